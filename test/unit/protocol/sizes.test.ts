// The size rule both ends rely on: the largest run a sender puts in one
// frame is within what the wire allows, a whole frame carrying it (LZ4
// worst case, one hash per smallest chunk) fits one receive slot, and its
// decoded payload fits one aligned slot — so that such frames are pooled and
// written with direct I/O.

import { describe, expect, it } from 'vitest';
import { Codec, DATA_HEADER_BYTES, encodeDataFrameParts, setFrameSeq, decodeDataFrame } from '../../../src/protocol/frames.js';
import { lz4Bound } from '../../../src/protocol/lz4-block.js';
import {
  ALIGNED_SLOT_BYTES, DATA_RUN_BYTES, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_DATA_RAW_BYTES, MIN_CHUNK_SIZE, RECEIVE_SLOT_BYTES,
} from '../../../src/protocol/sizes.js';
import { alignedBuffers, receiveBuffers } from '../../../src/receiver/receive-buffers.js';

describe('shared sizes', () => {
  it('a frame carrying the largest run fits a receive slot, its payload an aligned slot', () => {
    expect(DATA_RUN_BYTES).toBeLessThanOrEqual(MAX_DATA_RAW_BYTES);
    const hashes = new Array<bigint>(DATA_RUN_BYTES / MIN_CHUNK_SIZE).fill(1n);
    const [head, payload] = encodeDataFrameParts({
      seq: 1, offset: 0, rawLength: DATA_RUN_BYTES, codec: Codec.LZ4, hashes, payload: Buffer.alloc(4 + lz4Bound(DATA_RUN_BYTES)),
    });
    expect(head.length).toBe(5 + DATA_HEADER_BYTES + 8 * hashes.length);
    expect(head.length + payload.length).toBeLessThanOrEqual(RECEIVE_SLOT_BYTES);
    expect(receiveBuffers.slotBytes).toBe(RECEIVE_SLOT_BYTES);
    expect(alignedBuffers.slotBytes).toBe(ALIGNED_SLOT_BYTES);
    expect(ALIGNED_SLOT_BYTES).toBeGreaterThanOrEqual(DATA_RUN_BYTES);
  });

  it('chunk sizes: the default lies within the bounds, and a chunk fits one run', () => {
    expect(DEFAULT_CHUNK_SIZE).toBeGreaterThanOrEqual(MIN_CHUNK_SIZE);
    expect(DEFAULT_CHUNK_SIZE).toBeLessThanOrEqual(MAX_CHUNK_SIZE);
    expect(MAX_CHUNK_SIZE).toBeLessThanOrEqual(DATA_RUN_BYTES);
  });

  it('setFrameSeq numbers an encoded DATA frame in place', () => {
    const parts = encodeDataFrameParts({ seq: 0, offset: 4096, rawLength: 3, codec: Codec.RAW, hashes: [7n], payload: Buffer.from('abc') });
    setFrameSeq(parts[0], 42);
    const f = decodeDataFrame(Buffer.concat(parts).subarray(5));
    expect(f).toMatchObject({ seq: 42, offset: 4096, rawLength: 3, hashes: [7n] });
  });
});
