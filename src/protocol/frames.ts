// The ferry wire: length-prefixed frames exchanged over one TLS session
// between an agent and a receiver. This file owns the frame layout, the
// frame type numbers, the size cap and the schemas of every control frame;
// it knows nothing about sockets, disks or manifests (see docs/wire-protocol.md).
//
//   frame  = u32 BE length (of type + body) | u8 type | body
//
// Control frames carry a UTF-8 JSON body validated by the zod schemas of
// frame-schemas.ts (re-exported here).
// Data frames (DATA, ZERO, MANIFEST) carry a fixed binary header, big endian.
//
// Words, one meaning each (the glossary is in docs/wire-protocol.md, "Words"):
// a *chunk* is the block-level hash grain (chunkSize bytes, one manifest
// entry); a *run* is consecutive chunks with one verdict (a data run is one
// DATA frame); a *piece* is a 64 KiB piece of a large file (file level only);
// a *slice* is a stretch of the file-level tar stream (one FILE_DATA frame);
// *block* means block level only, never the agent's 4 MiB read.

import { FerryError } from '../errors/ferry-error.js';
import type { BufferPool } from './buffer-pool.js';
import { MAX_DATA_RAW_BYTES, MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES, MAX_ZERO_RUN_BYTES } from './sizes.js';

export { PROTOCOL_NAME } from './frame-schemas.js';
export const PROTOCOL_VERSION = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [1];

// The frame caps and the largest raw payload are defined with the other shared sizes.
export { MAX_DATA_RAW_BYTES, MAX_FRAME_BYTES, MAX_HELLO_FRAME_BYTES, MAX_ZERO_RUN_BYTES };

export const FrameType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  ERROR: 0x03,
  MANIFEST_REQUEST: 0x10,
  MANIFEST: 0x11,
  DATA: 0x20,
  ZERO: 0x21,
  COMMIT: 0x30,
  ACK: 0x31,
  NACK: 0x32,
  END: 0x40,
  DONE: 0x41,
  // 0x50–0x6f: file-level replication (kind 'file', see file-frames.ts).
  // 0x70–0x71: whole-server layout (kind 'system'; JSON bodies in layout/system-session.ts).
  SYSTEM_REQUEST: 0x70,
  SYSTEM_REPLY: 0x71,
  // 0x72–0x7f: reserved.
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export function frameTypeName(t: number): string {
  for (const [k, v] of Object.entries(FrameType)) if (v === t) return k;
  return `0x${t.toString(16).padStart(2, '0')}`;
}

export const Codec = { RAW: 0, LZ4: 1 } as const;
export type CodecValue = (typeof Codec)[keyof typeof Codec];

// ---------------------------------------------------------------- control frames

// The control frames' schemas live in frame-schemas.ts (zod/mini, bundled at
// build time so that an agent's start-up does not load all of zod).
export {
  AckSchema,
  CommitSchema,
  DoneSchema,
  EndSchema,
  ErrorFrameSchema,
  HelloSchema,
  ManifestRequestSchema,
  NackSchema,
  SessionKind,
  WelcomeSchema,
  type Ack,
  type Commit,
  type Done,
  type End,
  type ErrorFrame,
  type Hello,
  type ManifestRequest,
  type Nack,
  type Welcome,
} from './frame-schemas.js';

/**
 * What decodeJson needs of a schema: zod's safeParse. Both zod's classic
 * schemas (layout/) and the zod/mini ones of frame-schemas.ts
 * have it, whichever copy of zod's core built them.
 */
export interface JsonBodySchema<T> {
  safeParse(data: unknown): { success: true; data: T } | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };
}

// ---------------------------------------------------------------- encoding

export function encodeFrame(type: number, body: Uint8Array): Buffer {
  const len = 1 + body.length;
  if (len > MAX_FRAME_BYTES) throw new FerryError('FERRY_FRAME_TOO_LARGE', `frame of ${len} bytes exceeds the cap of ${MAX_FRAME_BYTES}`);
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt32BE(len, 0);
  out[4] = type;
  out.set(body, 5);
  return out;
}

export function encodeJsonFrame(type: number, value: unknown): Buffer {
  return encodeFrame(type, Buffer.from(JSON.stringify(value), 'utf8'));
}

export function decodeJson<T>(schema: JsonBodySchema<T>, type: number, body: Buffer): T {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw new FerryError('FERRY_FRAME_MALFORMED', `${frameTypeName(type)} frame body is not JSON`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new FerryError('FERRY_FRAME_MALFORMED', `${frameTypeName(type)} frame: ${issue?.path.join('.') || '(body)'}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

// DATA: u32 seq | u64 offset | u32 rawLength | u8 codec | u8 0 | u16 chunks | chunks × u64 hash | payload
export const DATA_HEADER_BYTES = 4 + 8 + 4 + 1 + 1 + 2;

export interface DataFrame {
  seq: number;
  offset: number;
  rawLength: number;
  codec: CodecValue;
  /** Canonical chunk hashes, one per chunk covered (see protocol/chunk-hash.ts). */
  hashes: bigint[];
  payload: Buffer;
}

/**
 * A DATA frame as [header with hashes, payload]: written back to back they
 * are one frame; keeping them apart spares copying the payload.
 */
export function encodeDataFrameParts(f: DataFrame): [Buffer, Buffer] {
  const headLen = DATA_HEADER_BYTES + 8 * f.hashes.length;
  const bodyLen = headLen + f.payload.length;
  if (1 + bodyLen > MAX_FRAME_BYTES) throw new FerryError('FERRY_FRAME_TOO_LARGE', `DATA frame of ${1 + bodyLen} bytes exceeds the cap`);
  const out = Buffer.allocUnsafe(5 + headLen);
  out.writeUInt32BE(1 + bodyLen, 0);
  out[4] = FrameType.DATA;
  let p = 5;
  out.writeUInt32BE(f.seq, p);
  p += 4;
  out.writeBigUInt64BE(BigInt(f.offset), p);
  p += 8;
  out.writeUInt32BE(f.rawLength, p);
  p += 4;
  out[p++] = f.codec;
  out[p++] = 0;
  out.writeUInt16BE(f.hashes.length, p);
  p += 2;
  for (const h of f.hashes) {
    out.writeBigUInt64BE(h, p);
    p += 8;
  }
  return [out, f.payload];
}

/** Where a DATA or ZERO frame's seq sits in its encoded bytes: after the length prefix and type. */
const SEQ_AT = 5;

/**
 * Sets the seq of an encoded DATA frame (its header part) or ZERO frame in
 * place: a sender numbers frames as they go onto the wire, after encoding.
 */
export function setFrameSeq(head: Buffer, seq: number): void {
  head.writeUInt32BE(seq, SEQ_AT);
}

export function encodeDataFrame(f: DataFrame): Buffer {
  return Buffer.concat(encodeDataFrameParts(f));
}

export function decodeDataFrame(body: Buffer): DataFrame {
  if (body.length < DATA_HEADER_BYTES) throw new FerryError('FERRY_FRAME_MALFORMED', 'DATA frame shorter than its header');
  const seq = body.readUInt32BE(0);
  const offset = Number(body.readBigUInt64BE(4));
  const rawLength = body.readUInt32BE(12);
  const codec = body[16]!;
  const chunks = body.readUInt16BE(18);
  if (codec !== Codec.RAW && codec !== Codec.LZ4) throw new FerryError('FERRY_FRAME_MALFORMED', `DATA frame with unknown codec ${codec}`);
  if (rawLength === 0 || rawLength > MAX_DATA_RAW_BYTES) throw new FerryError('FERRY_FRAME_MALFORMED', `DATA frame raw length ${rawLength} out of range`);
  const hashEnd = DATA_HEADER_BYTES + 8 * chunks;
  if (body.length < hashEnd) throw new FerryError('FERRY_FRAME_MALFORMED', 'DATA frame shorter than its hash list');
  const hashes: bigint[] = new Array(chunks);
  for (let i = 0; i < chunks; i++) hashes[i] = body.readBigUInt64BE(DATA_HEADER_BYTES + 8 * i);
  return { seq, offset, rawLength, codec: codec as CodecValue, hashes, payload: body.subarray(hashEnd) };
}

// ZERO: u32 seq | u64 offset | u64 length (length at most MAX_ZERO_RUN_BYTES, sizes.ts)

export interface ZeroFrame {
  seq: number;
  offset: number;
  length: number;
}

export function encodeZeroFrame(f: ZeroFrame): Buffer {
  const body = Buffer.allocUnsafe(20);
  body.writeUInt32BE(f.seq, 0);
  body.writeBigUInt64BE(BigInt(f.offset), 4);
  body.writeBigUInt64BE(BigInt(f.length), 12);
  return encodeFrame(FrameType.ZERO, body);
}

export function decodeZeroFrame(body: Buffer): ZeroFrame {
  if (body.length !== 20) throw new FerryError('FERRY_FRAME_MALFORMED', `ZERO frame body must be 20 bytes, got ${body.length}`);
  const f = { seq: body.readUInt32BE(0), offset: Number(body.readBigUInt64BE(4)), length: Number(body.readBigUInt64BE(12)) };
  if (f.length === 0) throw new FerryError('FERRY_FRAME_MALFORMED', 'ZERO frame of length 0');
  return f;
}

// MANIFEST: u64 first | u32 count | count × u64 hash
export function encodeManifestFrame(first: number, hashes: Buffer): Buffer {
  const body = Buffer.allocUnsafe(12 + hashes.length);
  body.writeBigUInt64BE(BigInt(first), 0);
  body.writeUInt32BE(hashes.length / 8, 8);
  body.set(hashes, 12);
  return encodeFrame(FrameType.MANIFEST, body);
}

export function decodeManifestFrame(body: Buffer): { first: number; hashes: Buffer } {
  if (body.length < 12) throw new FerryError('FERRY_FRAME_MALFORMED', 'MANIFEST frame shorter than its header');
  const first = Number(body.readBigUInt64BE(0));
  const count = body.readUInt32BE(8);
  if (body.length !== 12 + 8 * count) throw new FerryError('FERRY_FRAME_MALFORMED', 'MANIFEST frame length does not match its count');
  return { first, hashes: body.subarray(12) };
}

// ---------------------------------------------------------------- decoding a stream

export interface RawFrame {
  type: number;
  body: Buffer;
  /**
   * Set when the body lives in a pooled buffer: call it once nothing refers
   * to the body any more, so that the buffer is reused. Not calling it is
   * safe (the buffer is left to the garbage collector); calling it while
   * the body is still in use is not.
   */
  release?: () => void;
}

/**
 * Splits a byte stream into frames. Refuses (throws FERRY_FRAME_TOO_LARGE)
 * as soon as a length field exceeds the cap, before buffering the body.
 * With a pool, a frame that spans several reads and fits a pool buffer is
 * gathered into one as its bytes arrive (see RawFrame.release).
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private maxFrameBytes: number;
  private pool: BufferPool | undefined;
  /** The frame being gathered into a pool buffer. */
  private gathering: { slot: Buffer; need: number; have: number } | undefined;

  constructor(maxFrameBytes = MAX_FRAME_BYTES, pool?: BufferPool) {
    this.maxFrameBytes = maxFrameBytes;
    this.pool = pool;
  }

  /**
   * Changes the cap and the pool for the frames still to come (the receiver
   * raises a small pre-authentication cap once HELLO is accepted).
   */
  setLimits(maxFrameBytes: number, pool?: BufferPool): void {
    this.maxFrameBytes = maxFrameBytes;
    this.pool = pool;
  }

  push(data: Buffer): RawFrame[] {
    const out: RawFrame[] = [];
    const g = this.gathering;
    if (g) {
      const n = Math.min(data.length, g.need - g.have);
      g.slot.set(n === data.length ? data : data.subarray(0, n), g.have);
      g.have += n;
      if (g.have < g.need) return out;
      this.gathering = undefined;
      out.push(this.pooledFrame(g.slot, g.need));
      if (n === data.length) return out;
      data = data.subarray(n);
    }
    this.chunks.push(data);
    this.buffered += data.length;
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len === 0) throw new FerryError('FERRY_FRAME_MALFORMED', 'frame with length 0');
      if (len > this.maxFrameBytes) {
        throw new FerryError('FERRY_FRAME_TOO_LARGE', `frame of ${len} bytes exceeds the cap of ${this.maxFrameBytes}`);
      }
      const whole = 4 + len;
      const pool = this.pool;
      const pooled = pool !== undefined && whole <= pool.slotBytes && this.chunks[0]!.length < whole;
      if (this.buffered < whole) {
        if (pooled) {
          // Start gathering: the reads still to come are copied straight in.
          const slot = pool.take();
          const have = this.buffered;
          this.takeInto(slot, have);
          this.gathering = { slot, need: whole, have };
        }
        break;
      }
      if (pooled) {
        const slot = pool.take();
        this.takeInto(slot, whole);
        out.push(this.pooledFrame(slot, whole));
        continue;
      }
      const frame = this.take(whole);
      out.push({ type: frame[4]!, body: frame.subarray(5) });
    }
    return out;
  }

  get pendingBytes(): number {
    return this.buffered + (this.gathering?.have ?? 0);
  }

  private pooledFrame(slot: Buffer, n: number): RawFrame {
    return { type: slot[4]!, body: slot.subarray(5, n), release: this.pool!.releaser(slot) };
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  /** Moves the next n buffered bytes (n ≤ buffered) into dst. */
  private takeInto(dst: Buffer, n: number): void {
    let have = 0;
    while (have < n) {
      const c = this.chunks[0]!;
      const want = n - have;
      if (c.length <= want) {
        dst.set(c, have);
        have += c.length;
        this.chunks.shift();
      } else {
        dst.set(c.subarray(0, want), have);
        have += want;
        this.chunks[0] = c.subarray(want);
      }
    }
    this.buffered -= n;
  }

  private take(n: number): Buffer {
    let first = this.chunks[0]!;
    if (first.length < n) {
      // Gather only what is needed into one buffer.
      const parts: Buffer[] = [];
      let have = 0;
      while (have < n) {
        const c = this.chunks.shift()!;
        parts.push(c);
        have += c.length;
      }
      first = Buffer.concat(parts, have);
      this.chunks.unshift(first);
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
