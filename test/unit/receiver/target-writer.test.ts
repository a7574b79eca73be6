// The receiver's target writer: writes land in the order given (later wins
// where they overlap), queued writes that continue each other are merged,
// and aligned pooled buffers go with direct I/O where the file allows it.
import { constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alignedBuffers } from '../../../src/receiver/receive-buffers.js';
import { TargetWriter } from '../../../src/receiver/target-writer.js';

const K = 4096;

describe('target writer', () => {
  for (const withDirect of [true, false]) {
    it(`writes in order and merges contiguous queued writes (${withDirect ? 'direct I/O where possible' : 'page cache'})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ferry-writer-'));
      const path = join(dir, 't');
      const fh = await open(path, 'w+');
      await fh.truncate(64 * K);
      const direct = withDirect ? await open(path, constants.O_RDWR | constants.O_DIRECT).catch(() => undefined) : undefined;
      const held: (() => void)[] = [];
      try {
        let refused = 0;
        const w = new TargetWriter(fh, direct, 't', () => refused++);
        const expected = Buffer.alloc(64 * K);
        const put = (at: number, len: number, byte: number, aligned: boolean): Promise<void> => {
          let b: Buffer;
          const a = aligned ? alignedBuffers.take(len) : undefined;
          if (a) {
            b = a.buf;
            held.push(a.release);
          } else b = Buffer.alloc(len);
          b.fill(byte);
          expected.fill(byte, at, at + len);
          return w.write(b, at);
        };
        const all: Promise<void>[] = [];
        // Eight contiguous aligned writes, queued at once: merged.
        for (let i = 0; i < 8; i++) all.push(put(i * 2 * K, 2 * K, i + 1, true));
        // An ordinary buffer continuing them, then a zero range over part of it, then a rewrite.
        all.push(put(16 * K, 3 * K, 0x33, false));
        all.push(w.zeros(17 * K, 18 * K));
        expected.fill(0, 17 * K, 18 * K);
        all.push(put(30 * K, 4 * K, 0x44, true));
        all.push(put(31 * K, 100, 0x55, false));
        // Ends mid-block: cannot go direct.
        all.push(put(40 * K, K + 10, 0x66, true));
        await Promise.all(all);
        expect(refused).toBe(0);
        expect(w.writes).toBeLessThan(all.length);
        await w.close();
        expect(readFileSync(path).equals(expected)).toBe(true);
      } finally {
        for (const r of held) r();
        await fh.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('fails the writes of a batch that cannot be written, and goes on with the next ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-writer-'));
    const path = join(dir, 't');
    const ro = await open(path, 'w+');
    await ro.close();
    const fh = await open(path, 'r');
    try {
      const w = new TargetWriter(fh, undefined, 't', () => {});
      await expect(w.write(Buffer.alloc(10, 1), 0)).rejects.toThrow();
      await expect(w.zeros(0, K)).rejects.toThrow();
    } finally {
      await fh.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
