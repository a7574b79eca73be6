// Chooses how a frame payload travels (a block level data run, a file level
// slice): lz4 (the LZ4 block format, on a pool of worker threads, i.e. on
// both cores) when it shrinks, raw when it does not. A byte-entropy estimate on a small sample rejects random or
// already-compressed data before any compression is tried.

import { Codec, type CodecValue } from './frames.js';
import { Lz4Pool } from './lz4-pool.js';
import { lz4Compress } from './lz4-block.js';

/** Keep lz4 only when it saves at least this fraction. */
const MIN_SAVING = 0.05;
/** Above this many bits per byte, lz4 will not win: send raw. */
const RAW_ABOVE_BITS = 7.2;
const SAMPLE_SPOTS = 4;
const SAMPLE_BYTES = 1024;

export interface Encoded {
  codec: CodecValue;
  payload: Buffer;
}

const counts = new Uint32Array(256);
const LOG2 = new Float64Array(SAMPLE_SPOTS * SAMPLE_BYTES + 1);
for (let i = 1; i < LOG2.length; i++) LOG2[i] = Math.log2(i);

/** Shannon entropy (bits per byte) of a few spread-out samples of `b`. */
export function sampleEntropy(b: Uint8Array): number {
  counts.fill(0);
  let n = 0;
  const step = Math.max(SAMPLE_BYTES, Math.floor(b.length / SAMPLE_SPOTS));
  for (let spot = 0; spot < b.length && n < SAMPLE_SPOTS * SAMPLE_BYTES; spot += step) {
    const end = Math.min(b.length, spot + SAMPLE_BYTES);
    for (let i = spot; i < end; i++) counts[b[i]!]!++;
    n += end - spot;
  }
  if (n === 0) return 0;
  let sum = 0;
  for (let v = 0; v < 256; v++) {
    const c = counts[v]!;
    if (c) sum += c * LOG2[c]!;
  }
  return LOG2[n]! - sum / n;
}

let shared: Lz4Pool | undefined;

/** The process-wide compression pool (workers are unref'd: they never keep the process alive). */
export function compressionPool(): Lz4Pool {
  shared ??= new Lz4Pool();
  return shared;
}

export async function encodePayload(raw: Buffer, pool: Lz4Pool = compressionPool()): Promise<Encoded> {
  if (sampleEntropy(raw) > RAW_ABOVE_BITS) return { codec: Codec.RAW, payload: raw };
  return compressIfSmaller(raw, pool);
}

/** encodePayload on the calling thread: the same choice (entropy check, lz4 kept if smaller), no pool. */
export function encodePayloadInline(raw: Buffer): Encoded {
  if (sampleEntropy(raw) > RAW_ABOVE_BITS) return { codec: Codec.RAW, payload: raw };
  return smallerOf(raw, lz4Compress(raw));
}

/** lz4 when it saves at least MIN_SAVING, else raw (the entropy check is the caller's). */
async function compressIfSmaller(raw: Buffer, pool: Lz4Pool): Promise<Encoded> {
  const out = await pool.compress(raw);
  const enc = smallerOf(raw, out);
  // Not kept: a reused output goes straight back (a no-op for a pool that does not reuse them).
  if (enc.payload !== out) pool.recycle(out);
  return enc;
}

/** The compressed form when it saves at least MIN_SAVING, else the raw bytes. */
function smallerOf(raw: Buffer, out: Buffer): Encoded {
  if (out.length > raw.length * (1 - MIN_SAVING)) return { codec: Codec.RAW, payload: raw };
  return { codec: Codec.LZ4, payload: out };
}

/** Whether a governed payload goes raw without trying: random-looking, or the governor spares the CPU this time. */
function governedRaw(raw: Buffer, governor: CompressionGovernor): boolean {
  return sampleEntropy(raw) > RAW_ABOVE_BITS || !governor.shouldCompress();
}

/**
 * How much of the compressible data to compress, adapted to what limits the
 * pass. Compression only pays when the link (or the rate limit, or the
 * receiver) is slower than the compressor: when the sender has to wait for
 * compressed frames, the share goes down; when it waits for the window or
 * the socket, it goes up. On a slow or rate-limited link everything
 * compressible is compressed; on a fast one the CPU is spared.
 */
export class CompressionGovernor {
  /** Share of compressible payloads to compress, 0..1. */
  share = 1;
  private credit = 0;

  /** Decide for one payload (deterministic: spreads the share evenly). */
  shouldCompress(): boolean {
    this.credit += this.share;
    if (this.credit >= 1) {
      this.credit -= 1;
      return true;
    }
    return false;
  }

  /** The sender waited for a frame still being compressed. */
  compressionBound(): void {
    this.share = Math.max(0, this.share - 0.05);
  }

  /** The sender waited for the window or the socket. */
  wireBound(): void {
    this.share = Math.min(1, this.share + 0.05);
  }
}

export async function encodePayloadGoverned(raw: Buffer, governor: CompressionGovernor, pool: Lz4Pool = compressionPool()): Promise<Encoded> {
  if (governedRaw(raw, governor)) return { codec: Codec.RAW, payload: raw };
  return compressIfSmaller(raw, pool);
}

/**
 * The same choice as encodePayloadGoverned, compressed on the calling thread
 * (liblz4 through the native module, else the wasm codec): for a sender with little to compress,
 * such as a block delta, where starting the pool's worker threads costs more
 * than the compression. Measured (issue 14, --cpu-prof of a delta pass after
 * 500 scattered 16 KiB writes in a 1 GiB image, about 20 MB sent): the pool's
 * two workers spent 0.1–0.13 s each booting on a 2-core machine, against a
 * few tens of ms to compress the whole delta here.
 */
export function encodePayloadGovernedInline(raw: Buffer, governor: CompressionGovernor): Encoded {
  if (governedRaw(raw, governor)) return { codec: Codec.RAW, payload: raw };
  return smallerOf(raw, lz4Compress(raw));
}
