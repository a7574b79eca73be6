// The compression pool's reused outputs (issue 14, a full file pass): with
// `reuseOutputs`, a worker writes each result into a buffer the pool hands
// it, and a result given back with `recycle` carries the next one, so a
// pass does not leave a fresh 1 MiB buffer per frame to the garbage
// collector. Real worker threads.

import { afterAll, describe, expect, it } from 'vitest';
import { lz4CompressBody, lz4Init, Lz4Pool, type CompressTask } from '../../../src/protocol/lz4-pool.js';
import { nativeFsPath } from '../../../src/platform/native-fs.js';
import { handlerHere } from '../../../src/platform/worker-pool.js';
import { fastCodec, lz4Bound, lz4Decompress } from '../../../src/protocol/lz4-block.js';
import { encodePayload } from '../../../src/protocol/compress.js';
import { Codec } from '../../../src/protocol/frames.js';

const pools: Lz4Pool[] = [];
afterAll(async () => {
  for (const p of pools) await p.close();
});

function text(seed: string, n: number): Buffer {
  return Buffer.from(seed.repeat(Math.ceil(n / seed.length))).subarray(0, n);
}

describe('lz4 pool outputs', () => {
  it('writes the next result into a result given back, and each result decodes to its input', async () => {
    const pool = new Lz4Pool(1, undefined, true);
    pools.push(pool);
    const a = text('the first frame of a pass. ', 1 << 20);
    const b = text('a second frame, other words. ', 300_000);
    const ra = await pool.compress(a);
    expect(lz4Decompress(ra, a.length).equals(a)).toBe(true);
    pool.recycle(ra);
    pool.recycle(ra); // a second recycle of the same result is ignored
    const rb = await pool.compress(b);
    // The memory went to the worker and back (a transferred buffer leaves its old handle empty).
    expect(ra.buffer.byteLength).toBe(0);
    expect(lz4Decompress(rb, b.length).equals(b)).toBe(true);
    // Not given back: the next result gets a buffer of its own, rb stays as it is.
    const rc = await pool.compress(a);
    expect(rb.buffer.byteLength).toBeGreaterThan(0);
    expect(lz4Decompress(rb, b.length).equals(b)).toBe(true);
    expect(lz4Decompress(rc, a.length).equals(a)).toBe(true);
  });

  it("compresses with the native module's liblz4 on its threads where this process has it (the same bytes as here)", async () => {
    const codec = fastCodec()!;
    const pool = new Lz4Pool(1);
    pools.push(pool);
    const words = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `word${i % 313} `).join(''));
    const here = Buffer.alloc(4 + lz4Bound(words.length));
    const want = here.subarray(0, codec.compress(words, here));
    const got = await pool.compress(words);
    // lz4_flex (wasm) and liblz4 pick different matches: equal bytes say which one ran on the worker.
    expect(got.equals(want)).toBe(true);
    expect(lz4Decompress(got, words.length).equals(words)).toBe(true);
    expect(lz4Init().native === undefined).toBe(nativeFsPath() === null);
  });

  it('takes back at once an output that was not kept (lz4 did not save enough: the frame goes raw)', async () => {
    // Compression on this thread, recording the output buffer each task was handed (no transfer: identities hold).
    const here = handlerHere(lz4CompressBody, { module: null });
    const handed: (ArrayBuffer | undefined)[] = [];
    const pool = new Lz4Pool(1, async (task: CompressTask) => (handed.push(task.output), here(task)), true);
    // Tried (6 bits per byte, under the entropy cut-off) but with next to nothing lz4 can reuse: it goes raw.
    const noise = Buffer.alloc(256 * 1024);
    for (let i = 0, x = 12345; i < noise.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      noise[i] = (x >>> 16) & 0x3f;
    }
    const enc = await encodePayload(noise, pool);
    expect(enc.codec).toBe(Codec.RAW);
    expect(enc.payload).toBe(noise);
    // The output it was tried into carries the next result.
    const next = await pool.compress(text('after a raw frame. ', 1 << 20));
    expect(handed).toHaveLength(2);
    expect(handed[1] !== undefined && handed[1] === handed[0]).toBe(true); // (not toBe on the buffers: a failure would print 1 MiB)
    expect(lz4Decompress(next, 1 << 20).equals(text('after a raw frame. ', 1 << 20))).toBe(true);
  });

  it('without reuseOutputs, results are their own exact-size buffers and recycle ignores them', async () => {
    const pool = new Lz4Pool(1);
    pools.push(pool);
    const a = text('plain results, as the block engine takes them. ', 200_000);
    const r1 = await pool.compress(a);
    expect(r1.buffer.byteLength).toBe(r1.length);
    pool.recycle(r1);
    const r2 = await pool.compress(a);
    expect(r2.buffer).not.toBe(r1.buffer);
    expect(lz4Decompress(r2, a.length).equals(a)).toBe(true);
  });
});
