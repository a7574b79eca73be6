// The frame layer of the wire: what goes in comes out, whatever the TCP
// segmentation, and frames over the cap are refused before they are buffered.
import { describe, expect, it } from 'vitest';
import {
  Codec,
  FrameDecoder,
  FrameType,
  HelloSchema,
  MAX_FRAME_BYTES,
  decodeDataFrame,
  decodeJson,
  decodeManifestFrame,
  decodeZeroFrame,
  encodeDataFrame,
  encodeFrame,
  encodeJsonFrame,
  encodeManifestFrame,
  encodeZeroFrame,
} from '../../../src/protocol/frames.js';
import { BufferPool } from '../../../src/protocol/buffer-pool.js';

describe('wire frames', () => {
  it('round-trips a DATA frame with its hashes and payload', () => {
    const payload = Buffer.from('hello world, hello world');
    const buf = encodeDataFrame({ seq: 7, offset: 3 * 32768, rawLength: 65536, codec: Codec.LZ4, hashes: [5n, 2n ** 64n - 1n], payload });
    const [f] = new FrameDecoder().push(buf);
    expect(f!.type).toBe(FrameType.DATA);
    const d = decodeDataFrame(f!.body);
    expect(d).toMatchObject({ seq: 7, offset: 98304, rawLength: 65536, codec: Codec.LZ4, hashes: [5n, 2n ** 64n - 1n] });
    expect(d.payload.equals(payload)).toBe(true);
  });

  it('round-trips ZERO and MANIFEST frames with offsets past 4 GiB', () => {
    const z = new FrameDecoder().push(encodeZeroFrame({ seq: 1, offset: 5 * 2 ** 32, length: 2 ** 33 }))[0]!;
    expect(decodeZeroFrame(z.body)).toEqual({ seq: 1, offset: 5 * 2 ** 32, length: 2 ** 33 });
    const entries = Buffer.alloc(24, 0xab);
    const m = new FrameDecoder().push(encodeManifestFrame(2 ** 33, entries))[0]!;
    const dm = decodeManifestFrame(m.body);
    expect(dm.first).toBe(2 ** 33);
    expect(dm.hashes.equals(entries)).toBe(true);
  });

  it('reassembles frames split at every byte boundary and several frames in one segment', () => {
    const a = encodeJsonFrame(FrameType.COMMIT, { id: 1, frontier: 0 });
    const b = encodeZeroFrame({ seq: 2, offset: 0, length: 32768 });
    const all = Buffer.concat([a, b, a]);
    const dec = new FrameDecoder();
    const got = [];
    for (let i = 0; i < all.length; i++) got.push(...dec.push(all.subarray(i, i + 1)));
    expect(got.map((f) => f.type)).toEqual([FrameType.COMMIT, FrameType.ZERO, FrameType.COMMIT]);
    expect(new FrameDecoder().push(all)).toHaveLength(3);
  });

  it('refuses a length field over the cap before the body arrives', () => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    expect(() => new FrameDecoder().push(head)).toThrow(expect.objectContaining({ code: 'FERRY_FRAME_TOO_LARGE' }));
    expect(() => encodeFrame(FrameType.DATA, Buffer.alloc(MAX_FRAME_BYTES))).toThrow(/exceeds the cap/);
  });

  it('validates control frames against their schema', () => {
    const bad = Buffer.from(JSON.stringify({ protocol: 'ferry', version: 1, kind: 'block' }));
    expect(() => decodeJson(HelloSchema, FrameType.HELLO, bad)).toThrow(expect.objectContaining({ code: 'FERRY_FRAME_MALFORMED' }));
    expect(() => decodeJson(HelloSchema, FrameType.HELLO, Buffer.from('{nope'))).toThrow(/not JSON/);
  });

  it('refuses malformed DATA and ZERO bodies', () => {
    expect(() => decodeDataFrame(Buffer.alloc(5))).toThrow(/shorter than its header/);
    const f = encodeDataFrame({ seq: 1, offset: 0, rawLength: 10, codec: Codec.RAW, hashes: [1n], payload: Buffer.alloc(10) });
    f[5 + 16] = 9; // codec byte
    expect(() => decodeDataFrame(f.subarray(5))).toThrow(/unknown codec/);
    expect(() => decodeZeroFrame(Buffer.alloc(19))).toThrow(/20 bytes/);
  });

  it('gathers frames that span reads into pooled buffers as the reads arrive, and reuses a buffer once released', () => {
    const pool = new BufferPool(64 * 1024, 4);
    const bodies = [0, 1, 2].map((k) => Buffer.alloc(40_000 + k, k + 1));
    const small = encodeJsonFrame(FrameType.COMMIT, { id: 1, frontier: 0 });
    const stream = Buffer.concat([
      small,
      ...bodies.map((b) => encodeFrame(FrameType.DATA, b)),
      small,
      encodeFrame(FrameType.DATA, Buffer.alloc(100_000, 9)),
      small,
    ]);
    for (const step of [7, 3_001, 7_000, 16_384, 40_006, stream.length]) {
      const dec = new FrameDecoder(MAX_FRAME_BYTES, pool);
      const got: { type: number; body: Buffer; release?: () => void }[] = [];
      for (let off = 0; off < stream.length; off += step) got.push(...dec.push(stream.subarray(off, off + step)));
      expect(dec.pendingBytes).toBe(0);
      expect(got.map((f) => f.type)).toEqual([FrameType.COMMIT, FrameType.DATA, FrameType.DATA, FrameType.DATA, FrameType.COMMIT, FrameType.DATA, FrameType.COMMIT]);
      for (const [k, b] of bodies.entries()) expect(got[k + 1]!.body.equals(b)).toBe(true);
      // Larger than a pool buffer: an ordinary buffer, nothing to release.
      expect(got[5]!.body.equals(Buffer.alloc(100_000, 9))).toBe(true);
      expect(got[5]!.release).toBeUndefined();
      expect(JSON.parse(got[6]!.body.toString())).toEqual({ id: 1, frontier: 0 });
      for (const f of got) f.release?.();
    }
    // A released buffer is reused (once, however often release is called).
    const dec = new FrameDecoder(MAX_FRAME_BYTES, pool);
    const frame = encodeFrame(FrameType.DATA, bodies[1]!);
    const [a] = [...dec.push(frame.subarray(0, 10)), ...dec.push(frame.subarray(10))];
    a!.release!();
    a!.release!();
    const [b] = [...dec.push(frame.subarray(0, 10)), ...dec.push(frame.subarray(10))];
    const [c] = [...dec.push(frame.subarray(0, 10)), ...dec.push(frame.subarray(10))];
    expect(b!.body.buffer).toBe(a!.body.buffer);
    expect(c!.body.buffer).not.toBe(a!.body.buffer);
    expect(c!.body.equals(bodies[1]!)).toBe(true);
  });
});
