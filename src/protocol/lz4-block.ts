// LZ4 block format (the format of `lz4 -B`'s blocks and of lz4-napi's
// `compress`). On the wire a DATA payload with codec 1 is
// `raw size: u32 LE | lz4 block`. Both directions run through the system's
// liblz4 where ferry's native module loads and finds it (lz4Compress and
// lz4Decompress in src/native/ferry-fs.c: about three times the
// WebAssembly codec's speed on this VM), else through WebAssembly
// (lz4-wasm.ts: lz4_flex, two to three times faster than TypeScript) when its
// module loads, else through the plain TypeScript codec below — the same
// format, so either side may use either. (lz4-napi 2.10 is not used here: it leaks
// native memory on every call — RSS grows by about a third of the data
// compressed — which breaks the agent's memory bound within one pass.)
//
// `makeCompressor` is self-contained on purpose: its source text is shipped
// to worker threads (see src/protocol/lz4-pool.ts).

import { FerryError } from '../errors/ferry-error.js';
import { nativeFs } from '../platform/native-fs.js';
import { wasmCodec, type WasmCodec } from './lz4-wasm.js';

let main: { codec: WasmCodec | null; name: 'liblz4' | 'wasm' | 'typescript' } | undefined;

/** This thread's codec, chosen once: liblz4 through the native module, else WebAssembly, else none (TypeScript). */
function chosen(): NonNullable<typeof main> {
  if (main === undefined) {
    const n = nativeFs();
    if (n?.lz4Compress && n.lz4Decompress) main = { codec: { compress: n.lz4Compress, decompress: n.lz4Decompress }, name: 'liblz4' };
    else {
      const wasm = wasmCodec();
      main = { codec: wasm, name: wasm ? 'wasm' : 'typescript' };
    }
  }
  return main;
}

/** The fastest codec this thread has: liblz4 through the native module, else WebAssembly (null: TypeScript). */
export function fastCodec(): WasmCodec | null {
  return chosen().codec;
}

/** Which codec fastCodec() runs on this thread (for the debug log: passes name it). */
export function lz4CodecName(): 'liblz4' | 'wasm' | 'typescript' {
  return chosen().name;
}

/** Worst-case compressed size of n bytes (LZ4_compressBound). */
export function lz4Bound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

/**
 * Returns compress(src, dst) → bytes written to dst (dst ≥ 4 + lz4Bound).
 * The output starts with src.length as u32 LE. Greedy single-probe hash
 * matcher with LZ4's skip acceleration, the speed class of `lz4 -1`.
 */
export function makeCompressor(): (src: Uint8Array, dst: Uint8Array) => number {
  const HASH_LOG = 14;
  const table = new Int32Array(1 << HASH_LOG);
  let base = 0;
  return function compress(src: Uint8Array, dst: Uint8Array): number {
    const n = src.length;
    if (base > 0x3fffffff - n) {
      table.fill(0);
      base = 0;
    }
    // Entries below `base` belong to earlier inputs and are ignored: no table reset per call.
    const b = base + 1;
    base += n + 1;
    dst[0] = n & 0xff;
    dst[1] = (n >>> 8) & 0xff;
    dst[2] = (n >>> 16) & 0xff;
    dst[3] = (n >>> 24) & 0xff;
    let op = 4;
    let anchor = 0;
    let ip = 0;
    const mflimit = n - 12;
    const matchLimit = n - 5;
    let misses = 0;
    if (n >= 13) {
      while (ip <= mflimit) {
        const seq = src[ip]! | (src[ip + 1]! << 8) | (src[ip + 2]! << 16) | (src[ip + 3]! << 24);
        const h = Math.imul(seq, -1640531535) >>> (32 - HASH_LOG);
        const stored = table[h]!;
        table[h] = ip + b;
        let ref = stored - b;
        if (
          stored >= b &&
          ip - ref <= 65535 &&
          src[ref] === src[ip] &&
          src[ref + 1] === src[ip + 1] &&
          src[ref + 2] === src[ip + 2] &&
          src[ref + 3] === src[ip + 3]
        ) {
          misses = 0;
          while (ip > anchor && ref > 0 && src[ip - 1] === src[ref - 1]) {
            ip--;
            ref--;
          }
          let len = 4;
          while (ip + len < matchLimit && src[ip + len] === src[ref + len]) len++;
          // sequence: token, literal length, literals, offset, match length
          const lit = ip - anchor;
          const tokenAt = op++;
          let token: number;
          if (lit >= 15) {
            token = 15 << 4;
            let r = lit - 15;
            while (r >= 255) {
              dst[op++] = 255;
              r -= 255;
            }
            dst[op++] = r;
          } else token = lit << 4;
          if (lit > 32) {
            dst.set(src.subarray(anchor, ip), op);
            op += lit;
          } else for (let i = anchor; i < ip; i++) dst[op++] = src[i]!;
          const off = ip - ref;
          dst[op++] = off & 0xff;
          dst[op++] = off >>> 8;
          const ml = len - 4;
          if (ml >= 15) {
            token |= 15;
            let r = ml - 15;
            while (r >= 255) {
              dst[op++] = 255;
              r -= 255;
            }
            dst[op++] = r;
          } else token |= ml;
          dst[tokenAt] = token;
          ip += len;
          anchor = ip;
          if (ip <= mflimit) {
            // Index a position inside the match so the next probe has a candidate.
            const p = ip - 2;
            const s2 = src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24);
            table[Math.imul(s2, -1640531535) >>> (32 - HASH_LOG)] = p + b;
          }
        } else {
          ip += 1 + (misses++ >>> 6);
        }
      }
    }
    const lit = n - anchor;
    if (lit >= 15) {
      dst[op++] = 15 << 4;
      let r = lit - 15;
      while (r >= 255) {
        dst[op++] = 255;
        r -= 255;
      }
      dst[op++] = r;
    } else dst[op++] = lit << 4;
    dst.set(src.subarray(anchor, n), op);
    op += lit;
    return op;
  };
}

let mainCompressor: ((src: Uint8Array, dst: Uint8Array) => number) | undefined;

/** Compresses on the calling thread: `u32 LE size | block`. */
export function lz4Compress(src: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + lz4Bound(src.length));
  const fast = fastCodec();
  if (fast) return out.subarray(0, fast.compress(src, out));
  mainCompressor ??= makeCompressor();
  const n = mainCompressor(new Uint8Array(src.buffer, src.byteOffset, src.length), new Uint8Array(out.buffer, out.byteOffset, out.length));
  return out.subarray(0, n);
}

function corrupt(why: string): never {
  throw new FerryError('FERRY_CHUNK_CORRUPT', `lz4 block is corrupt: ${why}`);
}

/** Checks the block's size prefix against `expected` and returns where to decode it: `into` when large enough, else a fresh buffer. */
function outputFor(data: Uint8Array, expected: number, into: Buffer | undefined): Buffer {
  if (data.length < 5) corrupt('too short');
  const size = data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! * 0x1000000);
  if (size !== expected) corrupt(`size prefix ${size}, expected ${expected}`);
  return into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
}

/**
 * Decodes `u32 LE size | block` into exactly `expected` bytes, in a fresh
 * buffer or at the start of `into` (when it is large enough). The size
 * prefix must be `expected` (the caller bounds it), so a frame cannot make
 * the decoder allocate more; corrupt input throws FERRY_CHUNK_CORRUPT.
 */
export function lz4Decompress(data: Uint8Array, expected: number, into?: Buffer): Buffer {
  return lz4DecompressWith(fastCodec(), data, expected, into);
}

/** lz4Decompress through `codec` (null: the TypeScript decoder). */
export function lz4DecompressWith(fast: WasmCodec | null, data: Uint8Array, expected: number, into?: Buffer): Buffer {
  if (!fast) return lz4DecompressJs(data, expected, into);
  const out = outputFor(data, expected, into);
  const size = out.length;
  let n: number;
  try {
    n = fast.decompress(data, out);
  } catch (e) {
    corrupt((e as Error).message);
  }
  if (n !== size) corrupt(`decoded ${n} bytes, expected ${size}`);
  return out;
}

/**
 * The TypeScript decoder (used when neither liblz4 nor the wasm module is available). Every
 * length and offset is bounds-checked: corrupt input throws, it never reads
 * or writes outside the buffers.
 */
export function lz4DecompressJs(data: Uint8Array, expected: number, into?: Buffer): Buffer {
  const out = outputFor(data, expected, into);
  const size = out.length;
  // Plain Uint8Array views: V8 optimises element access on them far better than on Buffer subclasses.
  const input = new Uint8Array(data.buffer, data.byteOffset, data.length);
  const dst = new Uint8Array(out.buffer, out.byteOffset, size);
  // Short copies go four bytes at a time through DataViews (unaligned access is fine there); they may
  // write up to 3 bytes past their end, only where the output has room, and later sequences overwrite them.
  const dv = new DataView(out.buffer, out.byteOffset, size);
  const iv = new DataView(input.buffer, input.byteOffset, input.length);
  let ip = 4;
  let op = 0;
  const end = input.length;
  for (;;) {
    if (ip >= end) corrupt('truncated sequence');
    const token = input[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) corrupt('truncated literal length');
        b = input[ip++]!;
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > end || op + lit > size) corrupt('literals overrun');
    if (lit > 16) dst.set(input.subarray(ip, ip + lit), op);
    else if (ip + 16 <= end && op + 16 <= size) for (let i = 0; i < lit; i += 4) dv.setUint32(op + i, iv.getUint32(ip + i, true), true);
    else for (let i = 0; i < lit; i++) dst[op + i] = input[ip + i]!;
    ip += lit;
    op += lit;
    if (ip === end) break;
    if (ip + 2 > end) corrupt('truncated offset');
    const off = input[ip]! | (input[ip + 1]! << 8);
    ip += 2;
    if (off === 0 || off > op) corrupt(`offset ${off} at ${op}`);
    let ml = token & 15;
    if (ml === 15) {
      let b: number;
      do {
        if (ip >= end) corrupt('truncated match length');
        b = input[ip++]!;
        ml += b;
      } while (b === 255);
    }
    ml += 4;
    if (op + ml > size) corrupt('match overruns the output');
    let from = op - off;
    if (ml > 32 && off >= ml) {
      dst.copyWithin(op, from, from + ml);
      op += ml;
    } else if (off >= 4 && op + ml + 4 <= size) {
      // Each 4-byte read lies wholly before its write (off ≥ 4): right for overlapping matches too.
      for (let i = 0; i < ml; i += 4) dv.setUint32(op + i, dv.getUint32(from + i, true), true);
      op += ml;
    } else {
      for (let i = 0; i < ml; i++) dst[op++] = dst[from++]!;
    }
  }
  if (op !== size) corrupt(`decoded ${op} bytes, expected ${size}`);
  return out;
}
