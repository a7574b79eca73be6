// Where the LZ4 WebAssembly module's bytes come from: lz4-wasm-nodejs's
// .wasm file beside its package. (The single executable replaces this
// module with one that reads the same bytes from a SEA asset; see
// packaging/sea/build-sea.mjs.)

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export function lz4WasmBytes(): Uint8Array {
  return readFileSync(createRequire(import.meta.url).resolve('lz4-wasm-nodejs/lz4_wasm_nodejs_bg.wasm'));
}
