// The receiver's aligned buffers: page-aligned views that a direct write
// accepts, handed out until the pool is empty, reused once given back.
import { constants, openSync, closeSync, writeSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AlignedPool, DIRECT_ALIGN } from '../../../src/receiver/receive-buffers.js';

describe('aligned receive buffers', () => {
  it('hands out aligned slots until none is left, and reuses a released one', () => {
    const pool = new AlignedPool(64 * 1024, 3);
    expect(pool.take(64 * 1024 + 1)).toBeUndefined();
    const a = pool.take(64 * 1024)!;
    const b = pool.take(4096)!;
    const c = pool.take(100)!;
    expect(pool.take(1)).toBeUndefined();
    for (const x of [a, b, c]) {
      expect(x.buf.byteOffset % DIRECT_ALIGN).toBe(0);
      expect(pool.holds(x.buf)).toBe(true);
    }
    expect(new Set([a, b, c].map((x) => x.buf.byteOffset)).size).toBe(3);
    expect(b.buf.length).toBe(4096);
    expect(pool.holds(Buffer.alloc(4096))).toBe(false);
    expect(pool.holds(a.buf.subarray(1))).toBe(false);
    b.release();
    b.release();
    const d = pool.take(8192)!;
    expect(d.buf.byteOffset).toBe(b.buf.byteOffset);
    expect(pool.take(1)).toBeUndefined();
  });

  it('gives buffers a direct write accepts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-aligned-'));
    try {
      const path = join(dir, 'f');
      let fd: number;
      try {
        fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_DIRECT);
      } catch {
        return; // this file system has no direct I/O: nothing to show here
      }
      const pool = new AlignedPool(64 * 1024, 2);
      const s = pool.take(2 * DIRECT_ALIGN)!;
      s.buf.fill(0x5a);
      try {
        expect(writeSync(fd, s.buf, 0, s.buf.length, DIRECT_ALIGN)).toBe(2 * DIRECT_ALIGN);
      } finally {
        closeSync(fd);
      }
      const back = readFileSync(path);
      expect(back.length).toBe(3 * DIRECT_ALIGN);
      expect(back.subarray(DIRECT_ALIGN).every((x) => x === 0x5a)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
