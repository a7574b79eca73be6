// `ferry status`: prints the agent's state from its data directory.

import type { Command } from 'commander';
import { defaultConfigPath, defaultDataDir } from '../config/default-paths.js';

export function register(program: Command): void {
  program
    .command('status')
    .description("show what the agent is doing (state, task, pass, progress) from its data directory")
    .option('--data-dir <dir>', 'agent data directory (default: data_dir from the config, else /var/lib/ferry)')
    .option('--config <path>', 'agent config file to take data_dir from', defaultConfigPath())
    .option('--json', 'print the raw state as JSON')
    .action(async (flags: { dataDir?: string; config: string; json?: boolean }) => {
      const [{ loadAgentConfig }, { readState }, { formatStatus }] = await Promise.all([
        import('../config/agent-config.js'),
        import('../agent/state-store.js'),
        import('../agent/status.js'),
      ]);
      let dir = flags.dataDir;
      if (!dir) dir = await loadAgentConfig(flags.config).then((c) => c.data_dir, () => defaultDataDir());
      const state = await readState(dir);
      if (flags.json) process.stdout.write(`${JSON.stringify(state ?? null, null, 2)}\n`);
      else process.stdout.write(formatStatus(state, dir));
      if (!state) process.exitCode = 3;
    });
}
