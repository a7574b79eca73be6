// Where the agent looks for its config and keeps its data by default. Kept
// apart from agent-config.ts (zod, yaml, node-cron) so the CLI can show these
// defaults in --help without loading the config machinery.

import { join } from 'node:path';

export function defaultConfigPath(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return join(process.env.ProgramData ?? 'C:\\ProgramData', 'ferry', 'agent.yaml');
  return '/etc/ferry/agent.yaml';
}

export function defaultDataDir(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return join(process.env.ProgramData ?? 'C:\\ProgramData', 'ferry', 'data');
  return '/var/lib/ferry';
}
