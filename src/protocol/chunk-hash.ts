// The canonical hash of one chunk of a volume, shared by agent and receiver:
// 0 for an all-zero chunk (so a sparse manifest file reads as "all zeros"),
// otherwise xxh64 (seed 0) with the values 0 and 1 moved to 2 and 3, since 1
// marks a chunk whose content the receiver does not know.

import { hasher } from './xxhash.js';

export const ZERO_HASH = 0n;
export const UNKNOWN_HASH = 1n;

export interface ChunkHasher {
  /** Canonical hash of a chunk's bytes. */
  hash(chunk: Uint8Array): bigint;
  /** xxh64 of bytes, without zero detection (for callers that already know). */
  xxh64(chunk: Uint8Array): bigint;
}

let loaded: Promise<ChunkHasher> | undefined;

const ZEROS = Buffer.alloc(256 * 1024);

const zeroViews = new Map<number, Buffer>();
function zerosOf(n: number): Buffer {
  let z = zeroViews.get(n);
  if (!z) {
    z = ZEROS.subarray(0, n);
    if (zeroViews.size < 64) zeroViews.set(n, z);
  }
  return z;
}

/** True when every byte is 0 (memcmp against a shared zero page, fast). */
export function isAllZero(b: Uint8Array): boolean {
  if (b.length <= ZEROS.length) return Buffer.compare(b, zerosOf(b.length)) === 0;
  for (let off = 0; off < b.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - off);
    if (Buffer.compare(b.subarray(off, off + n), ZEROS.subarray(0, n)) !== 0) return false;
  }
  return true;
}

export function loadChunkHasher(): Promise<ChunkHasher> {
  loaded ??= hasher().then(({ h64Raw }) => {
    const xxh64 = (chunk: Uint8Array): bigint => {
      const h = h64Raw(chunk);
      return h < 2n ? h + 2n : h;
    };
    return {
      xxh64,
      hash(chunk: Uint8Array): bigint {
        return isAllZero(chunk) ? ZERO_HASH : xxh64(chunk);
      },
    };
  });
  return loaded;
}
