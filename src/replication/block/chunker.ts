// Splits one large read into chunks of the receiver's chunk size, hashes
// each (canonical hash: 0 for all-zero chunks, xxh64 otherwise), compares it
// with what the receiver holds, and groups consecutive chunks into runs:
// 'data' (changed, to send; at most maxDataBytes each), 'zero' (changed to
// all zeros: a range marker) and 'same' (nothing to send).

import { ZERO_HASH, isAllZero, type ChunkHasher } from '../../protocol/chunk-hash.js';

export type Run =
  | { kind: 'data'; offset: number; length: number; hashes: bigint[] }
  | { kind: 'zero'; offset: number; length: number }
  | { kind: 'same'; offset: number; length: number; zeroBytes: number };

export interface ChunkedRead {
  runs: Run[];
  /** The canonical hash of every chunk of the read, u64 BE each (for the pass digest). */
  hashes: Buffer;
  zeroBytes: number;
}

/**
 * `have(i)` is the receiver's entry for the read's i-th chunk. `offset` is
 * the read's position in the volume (a multiple of `chunkSize`). `known`,
 * when given, holds every chunk's canonical hash already (u64 BE: the
 * native module's readHashed); otherwise they are computed here.
 */
export function chunkRead(
  data: Buffer,
  offset: number,
  chunkSize: number,
  have: (i: number) => bigint,
  hasher: ChunkHasher,
  maxDataBytes: number,
  known?: Buffer,
): ChunkedRead {
  const count = Math.ceil(data.length / chunkSize);
  const hashes = known ?? Buffer.allocUnsafe(count * 8);
  const runs: Run[] = [];
  let zeroBytes = 0;
  let cur: Run | undefined;
  for (let i = 0; i < count; i++) {
    const lo = i * chunkSize;
    const chunk = data.subarray(lo, Math.min(lo + chunkSize, data.length));
    let zero: boolean;
    let h: bigint;
    if (known) {
      h = known.readBigUInt64BE(i * 8);
      zero = h === ZERO_HASH;
    } else {
      zero = isAllZero(chunk);
      h = zero ? ZERO_HASH : hasher.xxh64(chunk);
      hashes.writeBigUInt64BE(h, i * 8);
    }
    if (zero) zeroBytes += chunk.length;
    const kind: Run['kind'] = h === have(i) ? 'same' : zero ? 'zero' : 'data';
    if (cur && cur.kind === kind && !(kind === 'data' && cur.length + chunk.length > maxDataBytes)) {
      cur.length += chunk.length;
      if (cur.kind === 'data') cur.hashes.push(h);
      if (cur.kind === 'same' && zero) cur.zeroBytes += chunk.length;
      continue;
    }
    if (cur) runs.push(cur);
    const at = offset + lo;
    cur =
      kind === 'data'
        ? { kind, offset: at, length: chunk.length, hashes: [h] }
        : kind === 'zero'
          ? { kind, offset: at, length: chunk.length }
          : { kind, offset: at, length: chunk.length, zeroBytes: zero ? chunk.length : 0 };
  }
  if (cur) runs.push(cur);
  return { runs, hashes, zeroBytes };
}
