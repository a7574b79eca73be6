// A sparse file's data ranges as the producer and the receiver's patch base
// copy take them (protocol/file-pieces.ts sparseRanges): from the extent map
// when the file has many holes, with its preallocated ranges read for zeros,
// so that data written into fallocate'd space and not yet on the disk is
// never taken for a hole.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXTENT_MAP_MIN_HOLES } from '../../../src/platform/file-extents.js';
import { sparseRanges } from '../../../src/protocol/file-pieces.js';
import { needs } from '../../helpers/requirements.js';

const MiB = 2 ** 20;
const env = needs({ tools: ['filefrag', 'fallocate'] });

describe.runIf(env.ok)('sparseRanges', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-sparse-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('data written into preallocated space, not yet synced, is data', async () => {
    const path = join(dir, 'prealloc.img');
    execFileSync('truncate', ['-s', `${100 * MiB}`, path]);
    execFileSync('fallocate', ['-o', '0', '-l', `${8 * MiB}`, path]);
    const w = openSync(path, 'r+');
    writeSync(w, Buffer.from('IMPORTANT DATA'), 0, 14, 40960);
    closeSync(w);
    const fd = openSync(path, 'r');
    try {
      const ranges = (await sparseRanges(fd, 100 * MiB, 8 * MiB))!;
      expect(100 * MiB - 8 * MiB).toBeGreaterThanOrEqual(EXTENT_MAP_MIN_HOLES);
      expect(ranges.some((r) => r.off <= 40960 && r.off + r.len >= 40960 + 14)).toBe(true);
      const b = Buffer.alloc(14);
      readSync(fd, b, 0, 14, 40960);
      expect(b.toString()).toBe('IMPORTANT DATA');
      // And nothing of the 92 MiB of holes, nor the preallocated zeros around the write.
      expect(ranges.reduce((n, r) => n + r.len, 0)).toBeLessThanOrEqual(64 * 1024);
    } finally {
      closeSync(fd);
    }
  });

  it('preallocated space that holds only zeros travels as a hole', async () => {
    const path = join(dir, 'zeros.img');
    execFileSync('truncate', ['-s', `${64 * MiB}`, path]);
    execFileSync('fallocate', ['-o', `${8 * MiB}`, '-l', `${8 * MiB}`, path]);
    const w = openSync(path, 'r+');
    writeSync(w, Buffer.alloc(4096, 1), 0, 4096, 32 * MiB);
    closeSync(w);
    execFileSync('sync', ['-f', path]);
    const fd = openSync(path, 'r');
    try {
      expect(await sparseRanges(fd, 64 * MiB, 8 * MiB + 4096)).toEqual([{ off: 32 * MiB, len: 4096 }]);
    } finally {
      closeSync(fd);
    }
  });
});
