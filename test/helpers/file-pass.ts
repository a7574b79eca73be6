// One file pass from src to a receiver target, the way a user runs it:
// `ferry migrate --files SRC=NAME --json` against a `ferry receive` child.

import { runFerry } from './cli.js';
import type { ReceiverInfo } from './block.js';
import { parseSummaries, type Summary } from './block.js';

export async function migrateFiles(r: ReceiverInfo, src: string, name: string, stateDir: string, extra: string[] = []): Promise<Summary> {
  const res = await runFerry(['migrate', '--to', `127.0.0.1:${r.port}`, '--token', r.token, '--fingerprint', r.fingerprint, '--files', `${src}=${name}`, '--state', stateDir, '--json', ...extra]);
  if (res.code !== 0) throw new Error(`ferry migrate exited ${res.code}: ${res.stderr.slice(-3000)}`);
  return parseSummaries(res.stdout)[0]!;
}
