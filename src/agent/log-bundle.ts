// UPLOAD_LOG: packs the agent's recent logs into a tar archive compressed as
// one LZ4 frame (readable with `lz4 -d | tar x`): the log file and its
// rotations when there is a log file, else the lines held in memory, plus the
// state file (which holds no secrets). Bounded: at most `maxBytes` of logs.

import { readFile } from 'node:fs/promises';
import { compressFrame } from 'lz4-napi';
import tar from 'tar-stream';

export interface LogBundleInput {
  logFiles: string[];
  recentLines: string[];
  stateFile?: string;
  scrub: (text: string) => string;
  maxBytes?: number;
}

export async function buildLogBundle(input: LogBundleInput): Promise<Buffer> {
  const max = input.maxBytes ?? 32 * 1024 * 1024;
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const add = (name: string, text: string) =>
    new Promise<void>((resolve, reject) => pack.entry({ name, mode: 0o600, mtime: new Date() }, Buffer.from(input.scrub(text)), (e) => (e ? reject(e) : resolve())));

  let budget = max;
  let added = 0;
  for (const f of input.logFiles) {
    if (budget <= 0) break;
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch {
      continue;
    }
    if (text.length > budget) text = text.slice(text.length - budget);
    budget -= text.length;
    await add(f.replace(/^.*[\\/]/, ''), text);
    added++;
  }
  if (added === 0) await add('agent-recent.log', input.recentLines.join('').slice(-max));
  if (input.stateFile) {
    const st = await readFile(input.stateFile, 'utf8').catch(() => undefined);
    if (st !== undefined) await add('state.json', st);
  }
  pack.finalize();
  await ended;
  return compressFrame(Buffer.concat(chunks));
}
