// LZ4 through WebAssembly: lz4-wasm-nodejs (lz4_flex compiled to wasm, by
// its author) compresses about twice and decodes about three times as fast
// as our TypeScript codec (lz4-block.ts) on the text-like data of a
// file tree, with output in the same `u32 LE size | block` form. Its own
// JavaScript glue instantiates at load time from a path beside the package
// and copies every result into a fresh array; this glue calls the same
// exports (the wasm-bindgen ABI of the pinned 0.9.2: malloc the input in
// wasm memory, call, read the result pointer and length from the return
// area, copy out, free) straight into the caller's buffers, and works the
// same in a worker thread and in the single executable.
//
// Memory: the module's memory grows to the largest input plus its output
// (a few MiB) and is reused; nothing is held natively.

import { lz4WasmBytes } from './lz4-wasm-bytes.js';

export interface WasmCodec {
  /** Writes `u32 LE size | block` of `src` into `dst`; returns the bytes written. */
  compress(src: Uint8Array, dst: Uint8Array): number;
  /** Decodes `u32 LE size | block` into `dst`; returns the decoded length. Throws on corrupt input. */
  decompress(src: Uint8Array, dst: Uint8Array): number;
}

/**
 * A codec over one instance of the module. Self-contained on purpose: its
 * source text runs on the compression pool's worker threads. A trap inside
 * the module (it should not happen: lz4_flex returns errors) leaves the
 * instance in an unknown state, so the next call gets a fresh one.
 */
export function makeWasmCodec(module: WebAssembly.Module): WasmCodec {
  interface Exports {
    memory: WebAssembly.Memory;
    compress(ret: number, ptr: number, len: number): void;
    decompress(ret: number, ptr: number, len: number): void;
    __wbindgen_add_to_stack_pointer(delta: number): number;
    __wbindgen_malloc(len: number): number;
    __wbindgen_free(ptr: number, len: number): void;
  }
  let x: Exports;
  let message = '';
  const imports = {
    __wbindgen_placeholder__: {
      // The module's error values are strings it hands over this way; we keep the text, not a handle.
      __wbindgen_string_new(ptr: number, len: number): number {
        message = Buffer.from(x.memory.buffer, ptr, len).toString('utf8');
        return 0;
      },
    },
  };
  const instantiate = () => {
    x = new WebAssembly.Instance(module, imports).exports as unknown as Exports;
  };
  instantiate();
  function call(fn: 'compress' | 'decompress', src: Uint8Array, dst: Uint8Array): number {
    const inst = x;
    const ret = inst.__wbindgen_add_to_stack_pointer(-16);
    try {
      const ptr = inst.__wbindgen_malloc(src.length);
      // The memory may have grown in malloc: take its buffer afterwards.
      new Uint8Array(inst.memory.buffer).set(src, ptr);
      message = '';
      inst[fn](ret, ptr, src.length);
      const r = new Int32Array(inst.memory.buffer, ret, 4);
      if (fn === 'decompress' && r[3] !== 0) throw new Error(message || 'corrupt lz4 block');
      const outPtr = r[0]! >>> 0;
      const outLen = r[1]! >>> 0;
      try {
        if (outLen > dst.length) throw new RangeError(`lz4: ${outLen} bytes do not fit the ${dst.length}-byte buffer`);
        dst.set(new Uint8Array(inst.memory.buffer, outPtr, outLen));
      } finally {
        inst.__wbindgen_free(outPtr, outLen);
      }
      return outLen;
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) instantiate();
      throw e;
    } finally {
      if (inst === x) inst.__wbindgen_add_to_stack_pointer(16);
    }
  }
  return {
    compress: (src, dst) => call('compress', src, dst),
    decompress: (src, dst) => call('decompress', src, dst),
  };
}

let compiled: WebAssembly.Module | null | undefined;

/**
 * The compiled module (once per process), or null when its bytes cannot be
 * loaded: callers fall back to the TypeScript codec, and a process warning
 * (code FERRY_LZ4_WASM, on stderr: the journal under systemd) says so once.
 */
export function lz4WasmModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(lz4WasmBytes());
    } catch (e) {
      compiled = null;
      process.emitWarning(`the LZ4 WebAssembly module cannot be loaded (${(e as Error).message}); using the slower TypeScript codec`, { code: 'FERRY_LZ4_WASM' });
    }
  }
  return compiled;
}

let mainCodec: WasmCodec | null | undefined;

/** A codec for the calling thread (null: use the TypeScript codec). */
export function wasmCodec(): WasmCodec | null {
  if (mainCodec === undefined) {
    const m = lz4WasmModule();
    mainCodec = m ? makeWasmCodec(m) : null;
  }
  return mainCodec;
}
