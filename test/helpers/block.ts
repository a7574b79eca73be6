// Helpers for the block replication tests: a real receiver child process,
// sha256 of a device or image, and writing test content to volumes.

import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readFileSync, openSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { PassSummary } from '../../src/replication/types.js';
import { spawnFerry, waitForLine } from './cli.js';

export interface ReceiverInfo {
  host: string;
  port: number;
  fingerprint: string;
  token: string;
}

export interface RunningReceiver {
  child: ChildProcessWithoutNullStreams;
  info: ReceiverInfo;
  stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startReceiver(dataDir: string, targets: string[], extra: string[] = [], port = 0, env: NodeJS.ProcessEnv = {}): Promise<RunningReceiver> {
  const child = spawnFerry(['receive', '--listen', `127.0.0.1:${port}`, '--data', dataDir, ...targets.flatMap((t) => ['--target', t]), ...extra], {
    FERRY_LOG_LEVEL: 'debug',
    ...env,
  });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  await waitForLine(child, /fingerprint=/);
  const info = JSON.parse(readFileSync(join(dataDir, 'receiver.json'), 'utf8')) as ReceiverInfo;
  return {
    child,
    info,
    stderr: () => err,
    stop: (signal: NodeJS.Signals = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

export function migrateArgs(r: ReceiverInfo, blocks: string[], port = r.port): string[] {
  return ['migrate', '--to', `127.0.0.1:${port}`, '--token', r.token, '--fingerprint', r.fingerprint, ...blocks.flatMap((b) => ['--block', b]), '--json'];
}

/** sha256 (hex) of a whole file, read at once: for small images and executables. */
export function sha256FileSync(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function sha256Of(path: string, length?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, length === undefined ? {} : { start: 0, end: length - 1 })
      .on('data', (b) => h.update(b))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Fills a volume: random and compressible stripes with zero gaps, like a used disk. */
export function fillVolume(path: string, size: number, stripe = 4 * 1024 * 1024): void {
  const fd = openSync(path, 'r+');
  const text = Buffer.alloc(stripe, 'ferry block replication test line, compressible enough\n');
  for (let off = 0, i = 0; off < size; off += stripe, i++) {
    const n = Math.min(stripe, size - off);
    if (i % 3 === 0) writeSync(fd, randomBytes(n), 0, n, off);
    else if (i % 3 === 1) writeSync(fd, text, 0, n, off);
  }
  fsyncSync(fd);
  closeSync(fd);
}

/** `count` random writes of `bytes` at 4 KiB-aligned offsets. */
export function scatterWrites(path: string, size: number, count: number, bytes: number): void {
  const fd = openSync(path, 'r+');
  for (let i = 0; i < count; i++) {
    const off = randomInt(0, Math.floor((size - bytes) / 4096)) * 4096;
    writeSync(fd, randomBytes(bytes), 0, bytes, off);
  }
  fsyncSync(fd);
  closeSync(fd);
}

/** What `ferry migrate --json` prints per volume (the fields the tests read). */
export type Summary = PassSummary;

export function parseSummaries(stdout: string): Summary[] {
  return JSON.parse(stdout.trim().split('\n').pop()!) as Summary[];
}
