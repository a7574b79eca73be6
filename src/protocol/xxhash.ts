// The process's one xxhash-wasm instance (xxh64, seed 0), loaded on first
// use: the chunk hash (chunk-hash.ts), file piece hashes (file-pieces.ts)
// and the file stream's digest all hash through it.

import xxhash, { type XXHashAPI } from 'xxhash-wasm';

let api: Promise<XXHashAPI> | null = null;

export function hasher(): Promise<XXHashAPI> {
  api ??= xxhash();
  return api;
}
