// A file pass flushes the target's file system when its free space falls
// under a margin (receiver/low-space.ts): xfs counts space for delayed
// allocations as used until the data is written out, and a create, symlink
// or rename that meets that ENOSPC fails although the data fits. These run
// the real `sync -f` on the file system holding the test's directory, with
// margins chosen above or below its free space so that the decision is
// known; a target that is really full still fails with SMS.1315 (tested in
// file-target-full.test.ts).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/platform/log.js';
import { LowSpaceFlush } from '../../src/receiver/low-space.js';
import { FileExtractor } from '../../src/receiver/file-extractor.js';
import { encodeHeader, ZERO_BLOCKS, bodyPadding, type TarHeader } from '../../src/protocol/tar-format.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-low-space-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A real logger whose records are kept. */
function recorded() {
  const records: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { records, log: createLogger({ name: 'test', level: 'debug', destination }) };
}

const MIB = 1024 * 1024;

describe('the low-space flush', () => {
  it('flushes once the free space is under the margin, says so, and not again before margin/4 more bytes', async () => {
    const { records, log } = recorded();
    const flush = new LowSpaceFlush(root, 'tree', log, Number.MAX_SAFE_INTEGER);
    flush.note(512 * 1024, 10); // under both check intervals: not even looked at
    expect(flush.flushes).toBe(0);
    flush.note(512 * 1024, 0);
    expect(flush.flushes).toBe(1);
    await flush.settle();
    flush.note(64 * MIB, 1000);
    expect(flush.flushes).toBe(1);
    const said = records.find((r) => String(r.msg).includes('low on free space'));
    expect(said).toMatchObject({ level: 30, target: 'tree', flushes: 1 });
    expect(String(said!.free)).toMatch(/^\d+ MiB$/);
    expect(records.some((r) => r.level === 40)).toBe(false); // `sync -f` ran and succeeded
  });

  it('flushes again after margin/4 more bytes while the space stays short', async () => {
    const flush = new LowSpaceFlush(root, 'tree', undefined, 8 * MIB);
    // The file system holding the test's directory has more than 8 MiB free: no flush at all.
    flush.note(32 * MIB, 0);
    expect(flush.flushes).toBe(0);
    const short = new LowSpaceFlush(root, 'tree', undefined, 2 ** 52); // 4 PiB: always short; margin/4 is 1 PiB
    short.note(MIB, 0);
    await short.settle();
    short.note(MIB, 0);
    expect(short.flushes).toBe(1);
  });

  it('while a flush runs, hands it back to wait for once the space falls under half the margin, and not above that', async () => {
    const free = () => {
      const s = statfsSync(root);
      return s.bfree * s.bsize;
    };
    // Always short (4 PiB margin): the second look, during the flush, is under half of it.
    const short = new LowSpaceFlush(root, 'tree', undefined, 2 ** 52);
    expect(short.note(MIB, 0)).toBeUndefined(); // starts the flush
    expect(short.flushes).toBe(1);
    const wait = short.note(MIB, 0);
    expect(wait).toBeInstanceOf(Promise);
    expect(short.waits).toBe(1);
    await wait;
    // Short of a margin of 1.5 times the free space, but not of half of it: flushed, and nothing to wait for.
    const tight = new LowSpaceFlush(root, 'tree', undefined, Math.floor(free() * 1.5));
    expect(tight.note(MIB, 0)).toBeUndefined();
    expect(tight.flushes).toBe(1);
    expect(tight.note(MIB, 0)).toBeUndefined();
    expect(tight.waits).toBe(0);
    await tight.settle();
  });

  it('gives up quietly where the file system cannot be asked', () => {
    const flush = new LowSpaceFlush(join(root, 'missing'), 'tree', undefined, Number.MAX_SAFE_INTEGER);
    flush.note(8 * MIB, 100);
    expect(flush.flushes).toBe(0);
  });

  it('runs inside a file pass: the extractor flushes a target short of its margin and every file arrives', async () => {
    const uid = process.getuid!();
    const gid = process.getgid!();
    const T = 1_600_000_000_000_000_000n;
    const h = (path: string, extra: Partial<TarHeader> = {}): TarHeader => ({ path: Buffer.from(path), type: 'file', size: 0, mode: 0o644, uid, gid, mtimeNs: T, ...extra });
    const parts: Buffer[] = [encodeHeader(h('d', { type: 'dir', mode: 0o755 }))];
    for (let i = 0; i < 200; i++) {
      const b = Buffer.alloc(2000 + i, `file ${i} `);
      parts.push(encodeHeader({ ...h(`d/f${i}`), size: b.length }), b, bodyPadding(b.length));
    }
    parts.push(ZERO_BLOCKS);
    const stream = Buffer.concat(parts);
    async function* pieces(): AsyncGenerator<Buffer> {
      for (let i = 0; i < stream.length; i += 64 * 1024) yield stream.subarray(i, i + 64 * 1024);
    }
    const ex = new FileExtractor({ root, lowSpaceBytes: Number.MAX_SAFE_INTEGER });
    const stats = await ex.extract(pieces());
    expect(stats.files).toBe(200);
    expect(ex.space.flushes).toBeGreaterThanOrEqual(1);
    expect(readdirSync(join(root, 'd'))).toHaveLength(200);
    expect(readFileSync(join(root, 'd', 'f199'), 'utf8').startsWith('file 199 ')).toBe(true);
  });
});
