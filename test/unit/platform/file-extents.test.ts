// A sparse file's data ranges from its extent map (filefrag -e): on real
// files of this machine's file system (the same ranges the zero scan finds,
// without reading the holes), and on recorded outputs for what must make the
// caller fall back to the scan (anything it cannot be sure of).
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataExtents, parseFilefrag } from '../../../src/platform/file-extents.js';
import { dataRanges } from '../../../src/protocol/file-pieces.js';
import { needs } from '../../helpers/requirements.js';

const MiB = 2 ** 20;
/** Bytes this process has read through read(2) and friends so far (page cache or not). */
const bytesRead = () => Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

// Recorded on this machine (e2fsprogs 1.47.0, ext4): a 300 MiB file with 12 KiB of data at 40 KiB,
// 4 MiB at 150 MiB (two extents) and 8 MiB preallocated (fallocate) at 200 MiB.
const RECORDED = `Filesystem type is: ef53
File size of /dev/fd/3 is 314572800 (76800 blocks of 4096 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:       10..      12:    8286218..   8286220:      3:         10:
   1:    38400..   38911:    8289792..   8290303:    512:    8324608:
   2:    38912..   39423:    8292352..   8292863:    512:    8290304:
   3:    51200..   53247:    8284160..   8286207:   2048:    8304640: last,unwritten
bash: 4 extents found
`;
const SIZE = 300 * MiB;

describe('parseFilefrag', () => {
  it('data extents merged where they touch; preallocated (unwritten) ones marked, for the caller to read', () => {
    expect(parseFilefrag(RECORDED, SIZE)).toEqual([
      { off: 40960, len: 12288 },
      { off: 150 * MiB, len: 4 * MiB },
      { off: 200 * MiB, len: 8 * MiB, unwritten: true },
    ]);
  });

  it('a file of holes only has no ranges', () => {
    expect(parseFilefrag('Filesystem type is: ef53\nFile size of /dev/fd/3 is 41943040 (10240 blocks of 4096 bytes)\nx: 0 extents found\n', 40 * MiB)).toEqual([]);
  });

  it('the last block is cut at the file size; an extent wholly past it is left out; the count of physical pieces may differ from the lines', () => {
    const text = `Filesystem type is: 58465342
File size of /dev/fd/3 is 10000 (3 blocks of 4096 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0:        0..       2:       100..       102:      3:
   1:        3..       9:       103..       109:      7:             last,eof
f: 1 extent found
`;
    expect(parseFilefrag(text, 10000)).toEqual([{ off: 0, len: 10000 }]);
  });

  it('null (the caller scans the file) for what it cannot be sure of', () => {
    const cases: [string, string, number][] = [
      ['the size changed since the caller looked', RECORDED, SIZE + 1],
      ['the map cut short (no extent marked last)', RECORDED.replace(/^ {3}3:.*\n/m, ''), SIZE],
      ['an extent line that does not parse', RECORDED.replace('   1:    38400..', '   1:    38400...'), SIZE],
      ['extents out of order', RECORDED.replace('   0:       10..      12:', '   0:    40000..   40002:'), SIZE],
      ['a delayed allocation (its length is not known yet)', RECORDED.replace('    512:    8324608:', '      0:    8324608: unknown_loc,delalloc'), SIZE],
      ['lines after the count', `${RECORDED}   4:    60000..   60001:    1..    2:      2:\n`, SIZE],
      ['no header', RECORDED.split('\n').slice(2).join('\n'), SIZE],
      ['a file system whose map is not taken (FUSE: FIBMAP reads every block it cannot map as a hole)', RECORDED.replace('ef53', '65735546'), SIZE],
      ['no file system line', RECORDED.replace(/^Filesystem type is: ef53\n/, ''), SIZE],
    ];
    for (const [why, text, size] of cases) expect(parseFilefrag(text, size), why).toBeNull();
  });
});

const env = needs({ tools: ['filefrag', 'fallocate'] });

describe.runIf(env.ok)('dataExtents on real files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-extents-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the data the zero scan finds and marks the preallocated range, of an open descriptor, without reading the holes', async () => {
    const path = join(dir, 'sparse.img');
    const w = openSync(path, 'w');
    writeSync(w, Buffer.alloc(3 * 4096, 0xab), 0, 3 * 4096, 40960);
    writeSync(w, Buffer.alloc(MiB, 0xcd), 0, MiB, 150 * MiB);
    closeSync(w);
    execFileSync('truncate', ['-s', `${300 * MiB}`, path]);
    execFileSync('fallocate', ['-o', `${200 * MiB}`, '-l', `${8 * MiB}`, path]);
    execFileSync('sync', ['-f', path]); // allocated, not delayed: the map is final
    const fd = openSync(path, 'r');
    try {
      const before = bytesRead();
      const mapped = await dataExtents(fd, 300 * MiB);
      // This process read next to nothing (filefrag reads the map, not the file); the scan reads all 300 MiB.
      expect(bytesRead() - before).toBeLessThan(16 * MiB);
      expect(mapped).toEqual([
        { off: 40960, len: 3 * 4096 },
        { off: 150 * MiB, len: MiB },
        { off: 200 * MiB, len: 8 * MiB, unwritten: true },
      ]);
      // What is not marked preallocated is what the scan finds.
      expect(mapped!.filter((x) => !x.unwritten)).toEqual(dataRanges(fd, 300 * MiB));
    } finally {
      closeSync(fd);
    }
  });

  it('null where the file system keeps no extent map (tmpfs): the caller scans', async () => {
    const shm = mkdtempSync('/dev/shm/ferry-extents-');
    try {
      const path = join(shm, 'f');
      execFileSync('truncate', ['-s', `${32 * MiB}`, path]);
      const fd = openSync(path, 'r');
      try {
        expect(await dataExtents(fd, 32 * MiB)).toBeNull();
      } finally {
        closeSync(fd);
      }
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  });
});
