// A manifest line is one flat string, not a tree of its 27 pieces: a
// directory listing holds every line of a directory until it is sent, and a
// line built by a template stayed a tree of V8 ConsStrings of about 1,150
// bytes (a flat line of 142 characters is about 190): 20 MB for the 17,954
// entries of one man1 directory on the walk's worker thread (2026-12-07).

import { setFlagsFromString, getHeapStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { manifestLine } from '../../../../src/replication/file/manifest.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (() => void) | undefined;

describe('manifestLine', () => {
  it('makes lines that hold little more memory than their characters', () => {
    if (typeof gc !== 'function') throw new Error("V8's gc() could not be exposed in this test process: the measure below needs it");
    const n = 20000;
    const lines: string[] = new Array(n);
    gc();
    const before = getHeapStatistics().used_heap_size;
    for (let i = 0; i < n; i++) {
      // The walker's forms: escaped path text, sizes and ids as numbers, times as decimal text.
      const name = `usr/share/man/man1/some-command-${i}.1.gz`;
      lines[i] = manifestLine(name, 'f', 4379 + i, `1775219372${String(i).padStart(9, '0')}`, `1796605533${String(i * 7).padStart(9, '0')}`, 0o100644, 0, 0, 66307, 526654 + i, 1, 0, 8192, '-');
    }
    gc();
    const perLine = (getHeapStatistics().used_heap_size - before) / n;
    const chars = lines.reduce((a, l) => a + l.length, 0) / n;
    expect(lines[7]).toBe(`usr/share/man/man1/some-command-7.1.gz\tf\t4386\t1775219372000000007\t1796605533000000049\t100644\t0\t0\t66307\t526661\t1\t0\t8192\t-`);
    // A flat one-byte string is its characters and a 16-byte header, the array slot 8 more; a tree of pieces was over 1,000.
    expect(perLine).toBeLessThan(chars + 120);
    // The stat's bigints (lstat with bigint: true) print as the numbers do.
    expect(manifestLine('a', 'f', 1, 1775219372000000007n, 1796605533000000049n, 0o100644, 0n, 0n, 66307n, 526661n, 1n, 0n, 8192, '-')).toBe('a\tf\t1\t1775219372000000007\t1796605533000000049\t100644\t0\t0\t66307\t526661\t1\t0\t8192\t-');
  });
});
