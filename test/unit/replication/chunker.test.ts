// The chunker: fine-grained hashing of one large read, compared with what
// the receiver holds, grouped into runs to send, zero-fill or skip.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chunkRead } from '../../../src/replication/block/chunker.js';
import { UNKNOWN_HASH, ZERO_HASH, isAllZero, loadChunkHasher } from '../../../src/protocol/chunk-hash.js';

const CS = 32 * 1024;

describe('chunker', async () => {
  const hasher = await loadChunkHasher();

  it('hashes zero chunks as 0 and data with xxh64 never equal to the sentinels', () => {
    expect(hasher.hash(Buffer.alloc(CS))).toBe(ZERO_HASH);
    const h = hasher.hash(randomBytes(CS));
    expect(h).not.toBe(ZERO_HASH);
    expect(h).not.toBe(UNKNOWN_HASH);
    expect(isAllZero(Buffer.alloc(600 * 1024))).toBe(true);
    const b = Buffer.alloc(600 * 1024);
    b[599 * 1024] = 1;
    expect(isAllZero(b)).toBe(false);
  });

  it('against an unknown manifest: data runs merged up to the cap, zero runs as markers', () => {
    // 8 chunks: data data zero zero data data data, then a short tail of data
    const data = Buffer.concat([randomBytes(2 * CS), Buffer.alloc(2 * CS), randomBytes(3 * CS), randomBytes(1000)]);
    const r = chunkRead(data, 10 * CS, CS, () => UNKNOWN_HASH, hasher, 2 * CS);
    expect(r.runs.map((x) => [x.kind, x.offset / CS, x.length])).toEqual([
      ['data', 10, 2 * CS],
      ['zero', 12, 2 * CS],
      ['data', 14, 2 * CS],
      ['data', 16, CS + 1000],
    ]);
    expect(r.zeroBytes).toBe(2 * CS);
    expect(r.hashes.length).toBe(8 * 8);
    const first = r.runs[0]!;
    expect(first.kind === 'data' && first.hashes).toEqual([hasher.hash(data.subarray(0, CS)), hasher.hash(data.subarray(CS, 2 * CS))]);
  });

  it('against the same content: one run to skip, nothing to send', () => {
    const data = Buffer.concat([randomBytes(3 * CS), Buffer.alloc(CS)]);
    const first = chunkRead(data, 0, CS, () => UNKNOWN_HASH, hasher, 1 << 20);
    const again = chunkRead(data, 0, CS, (i) => first.hashes.readBigUInt64BE(i * 8), hasher, 1 << 20);
    expect(again.runs).toEqual([{ kind: 'same', offset: 0, length: 4 * CS, zeroBytes: CS }]);
  });

  it('after a small write only the touched chunks are sent', () => {
    const data = randomBytes(16 * CS);
    const before = chunkRead(data, 0, CS, () => UNKNOWN_HASH, hasher, 1 << 20).hashes;
    randomBytes(5000).copy(data, 5 * CS + CS - 100); // straddles chunks 5 and 6
    const r = chunkRead(data, 0, CS, (i) => before.readBigUInt64BE(i * 8), hasher, 1 << 20);
    expect(r.runs.filter((x) => x.kind === 'data').map((x) => [x.offset / CS, x.length / CS])).toEqual([[5, 2]]);
  });

  it('a chunk that became zero travels as a zero marker', () => {
    const data = randomBytes(4 * CS);
    const before = chunkRead(data, 0, CS, () => UNKNOWN_HASH, hasher, 1 << 20).hashes;
    data.fill(0, CS, 2 * CS);
    const r = chunkRead(data, 0, CS, (i) => before.readBigUInt64BE(i * 8), hasher, 1 << 20);
    expect(r.runs.map((x) => x.kind)).toEqual(['same', 'zero', 'same']);
  });
});

describe('compressibility estimate', async () => {
  const { sampleEntropy, encodePayload } = await import('../../../src/protocol/compress.js');

  it('sends random data raw without compressing it, and compresses text', async () => {
    const random = randomBytes(1 << 20);
    expect(sampleEntropy(random)).toBeGreaterThan(7.8);
    expect((await encodePayload(random)).codec).toBe(0);
    const text = Buffer.alloc(1 << 20, 'the quick brown fox jumps over the lazy dog\n');
    expect(sampleEntropy(text)).toBeLessThan(5);
    const enc = await encodePayload(text);
    expect(enc.codec).toBe(1);
    expect(enc.payload.length).toBeLessThan(text.length / 10);
  });
});
