// Chooses how a run of changed chunks travels: lz4 (our block codec, on a
// pool of worker threads, i.e. on both cores) when it shrinks, raw when it
// does not. A byte-entropy estimate on a small sample rejects random or
// already-compressed data before any compression is tried.

import { Codec, type CodecValue } from '../wire/frames.js';
import { Lz4Pool } from './lz4-pool.js';

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

export async function encodeRun(raw: Buffer, pool: Lz4Pool = compressionPool()): Promise<Encoded> {
  if (sampleEntropy(raw) > RAW_ABOVE_BITS) return { codec: Codec.RAW, payload: raw };
  const out = await pool.compress(raw);
  if (out.length > raw.length * (1 - MIN_SAVING)) return { codec: Codec.RAW, payload: raw };
  return { codec: Codec.LZ4, payload: out };
}
