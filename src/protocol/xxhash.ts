// The process's xxh64 (seed 0), loaded on first use: the chunk hash
// (chunk-hash.ts), file piece hashes (file-pieces.ts) and the file stream's
// frame hashes and digest all hash through it. ferry's native module
// (xxh64, xxh64Update, xxh64Digest in src/native/ferry-fs.c, xxhash.h's
// code) where it loads with them, else one xxhash-wasm instance: the same
// values.
//
// Why native first (issue 14, /usr full copy; docs/file-replication.md, s39, "xxh64 where the bytes are"):
// each side hashes every byte of a file stream twice (the frame's hash, the
// stream's digest), and WebAssembly first copies the bytes into its memory
// each time. On this VM, 512 MiB in 1 MiB pieces with warm caches: one-shot
// 55-56 ms in WebAssembly against 28 ms native, running 53-55 ms against
// 29-30 ms (and 136 ms for WebAssembly's first round, before V8 optimised it).

import xxhash from 'xxhash-wasm';
import { nativeFs } from '../platform/native-fs.js';

/** A running xxh64: update with bytes, digest at any time (the hash so far). */
export interface Xxh64Stream {
  update(b: Uint8Array): unknown;
  digest(): bigint;
}

/** xxh64 (seed 0) of bytes, and a running one. */
export interface Xxh64 {
  h64Raw(b: Uint8Array): bigint;
  create64(): Xxh64Stream;
  /** Which code hashes: 'native' (ferry-fs) or 'wasm' (xxhash-wasm). */
  readonly by: 'native' | 'wasm';
}

let api: Promise<Xxh64> | null = null;

export function hasher(): Promise<Xxh64> {
  api ??= Promise.resolve(nativeHasher()).then((n) => n ?? wasmHasher());
  return api;
}

/** The native module's xxh64, or null where it has none (a module built without xxhash.h, or none). */
function nativeHasher(): Xxh64 | null {
  const n = nativeFs();
  if (!n?.xxh64 || !n.xxh64Update || !n.xxh64Digest || !n.xxh64StateBytes) return null;
  const { xxh64, xxh64Update, xxh64Digest, xxh64StateBytes } = n;
  return {
    h64Raw: xxh64,
    create64: () => {
      // A fresh ArrayBuffer, so 8-aligned; zero-filled, so reset at its first update.
      const state = new Uint8Array(xxh64StateBytes);
      return {
        update: (b: Uint8Array) => xxh64Update(state, b),
        digest: () => xxh64Digest(state),
      };
    },
    by: 'native',
  };
}

async function wasmHasher(): Promise<Xxh64> {
  const { h64Raw, create64 } = await xxhash();
  return { h64Raw, create64: () => create64(), by: 'wasm' };
}
