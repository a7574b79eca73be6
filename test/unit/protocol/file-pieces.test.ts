// Piece hashes of a large changed file (xxh64 per 64 KiB piece) on both
// sides of a delta: with the file's data ranges given, the holes of a sparse
// file hash as zeros without being read, and the hashes are the same as
// those of a read of the whole file.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PIECE, dataRanges, pieceHashes, pieceHashesOfHandle } from '../../../src/protocol/file-pieces.js';
import { receiverPieceHashes } from '../../../src/receiver/file-hashes.js';
import { needs } from '../../helpers/requirements.js';

const MiB = 2 ** 20;
/** Bytes this process has read through read(2) and friends so far (page cache or not). */
const bytesRead = () => Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

describe('piece hashes of a sparse file', () => {
  let dir: string;
  let path: string;
  // 100 MiB and 1,000 bytes (the last piece short): data at 40 KiB, across the 64 MiB boundary, and in the last piece.
  const SIZE = 100 * MiB + 1000;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-pieces-'));
    path = join(dir, 'sparse.img');
    const w = openSync(path, 'w');
    writeSync(w, Buffer.alloc(3 * 4096, 0xab), 0, 3 * 4096, 40960);
    writeSync(w, Buffer.alloc(MiB, 0xcd), 0, MiB, 64 * MiB - 4096);
    writeSync(w, Buffer.from('tail'), 0, 4, SIZE - 500);
    closeSync(w);
    execFileSync('truncate', ['-s', String(SIZE), path]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('hash as zeros outside the data ranges without reading there, the same hashes as a whole read', async () => {
    const fd = openSync(path, 'r');
    try {
      const whole = await pieceHashes(fd, SIZE);
      expect(whole.length).toBe(Math.ceil(SIZE / PIECE) * 8);
      const data = dataRanges(fd, SIZE)!;
      expect(data.length).toBe(3);
      const before = bytesRead();
      const mapped = await pieceHashes(fd, SIZE, data);
      // The 4 MiB stretches that hold data (three, and the short last one), not 100 MiB.
      expect(bytesRead() - before).toBeLessThan(16 * MiB);
      expect(mapped.equals(whole)).toBe(true);
      // A file with no data at all: every piece is the zero piece, nothing read.
      const zeros = await pieceHashesOfHandleOfZeros(SIZE);
      const b2 = bytesRead();
      const none = await pieceHashes(fd, SIZE, []);
      expect(bytesRead() - b2).toBeLessThan(MiB);
      expect(none.equals(zeros)).toBe(true);
    } finally {
      closeSync(fd);
    }
    const fh = await open(path, 'r');
    try {
      const fd2 = openSync(path, 'r');
      const data = dataRanges(fd2, SIZE)!;
      closeSync(fd2);
      expect((await pieceHashesOfHandle(fh, SIZE, data)).equals(await pieceHashesOfHandle(fh, SIZE))).toBe(true);
    } finally {
      await fh.close();
    }
  });

  const env = needs({ tools: ['filefrag'] });
  it.runIf(env.ok)("the receiver's answer for its sparse copy maps the holes (filefrag) instead of reading them", async () => {
    execFileSync('sync', ['-f', path]); // allocated, not delayed: the map is final
    const fd = openSync(path, 'r');
    const whole = await pieceHashes(fd, SIZE);
    closeSync(fd);
    const before = bytesRead();
    const answer = await receiverPieceHashes(Buffer.from(dir), Buffer.from('sparse.img'));
    expect(bytesRead() - before).toBeLessThan(16 * MiB);
    expect(answer!.equals(whole)).toBe(true);
  });
});

/** The piece hashes of `size` zero bytes, read from /dev/zero's equivalent: a file of that many zeros written out. */
async function pieceHashesOfHandleOfZeros(size: number): Promise<Buffer> {
  const d = mkdtempSync(join(tmpdir(), 'ferry-zeros-'));
  try {
    const p = join(d, 'z');
    execFileSync('truncate', ['-s', String(size), p]);
    const fh = await open(p, 'r');
    try {
      return await pieceHashesOfHandle(fh, size);
    } finally {
      await fh.close();
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}
