// Chooses how a run of changed chunks travels: lz4 (block API, async so the
// work spreads over the libuv thread pool, i.e. over every core) when it
// shrinks, raw when it does not. A small sample is tried first so random or
// already-compressed data costs almost nothing to reject.

import { compress, compressSync } from 'lz4-napi';
import { Codec, type CodecValue } from '../wire/frames.js';

const SAMPLE_BYTES = 8 * 1024;
/** Keep lz4 only when it saves at least this fraction. */
const MIN_SAVING = 0.05;

export interface Encoded {
  codec: CodecValue;
  payload: Buffer;
}

export async function encodeRun(raw: Buffer): Promise<Encoded> {
  if (raw.length > SAMPLE_BYTES * 2) {
    const sample = compressSync(raw.subarray(0, SAMPLE_BYTES));
    if (sample.length - 4 > SAMPLE_BYTES * (1 - MIN_SAVING)) return { codec: Codec.RAW, payload: raw };
  }
  const out = await compress(raw);
  if (out.length > raw.length * (1 - MIN_SAVING)) return { codec: Codec.RAW, payload: raw };
  return { codec: Codec.LZ4, payload: out };
}
