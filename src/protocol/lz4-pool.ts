// Compression off the main thread: a small pool of worker threads (one per
// core, at most 2 by default) running the LZ4 block compressor (the host's
// liblz4 through ferry's native module, which each worker loads by the path
// in its init data; else the wasm one, lz4-wasm.ts, whose compiled module
// each worker instantiates from its init data; the TypeScript one if neither
// is available), on platform/worker-pool.ts. Inputs are copied into a
// transferable buffer, results transferred back, so no memory is shared. If
// workers cannot start, the same compression runs on the calling thread.

import { availableParallelism } from 'node:os';
import { lz4Bound, makeCompressor } from './lz4-block.js';
import { lz4WasmModule, makeWasmCodec } from './lz4-wasm.js';
import { WorkerPool, workerBody, type Transfer } from '../platform/worker-pool.js';
import { loadNativeFs, nativeFsPath } from '../platform/native-fs.js';
import { DATA_RUN_BYTES } from './sizes.js';

/** Input buffers are allocated at this size: the most raw bytes a sender puts in one frame. */
const INPUT_BYTES = DATA_RUN_BYTES;

export interface CompressTask {
  input: ArrayBuffer;
  length: number;
  /** Where to write the result (at least OUTPUT_BYTES), handed back with it; without, the worker allocates one. */
  output?: ArrayBuffer;
}

export interface Compressed {
  out: ArrayBuffer;
  /** Bytes of `out` written (default: all of it). */
  length?: number;
  /** The task's input buffer, handed back for the next task: no garbage piles up in the worker's isolate. */
  input: ArrayBuffer;
}

/** Output buffers are allocated at this size: `u32 size | block` of the largest input. */
const OUTPUT_BYTES = 4 + lz4Bound(INPUT_BYTES);
/**
 * Output buffers kept for reuse, at most: the frames compressed ahead and
 * those the socket still holds (stream-sender.ts: ENCODE_AHEAD 2).
 */
const SPARE_OUTPUTS = 4;

/** A compressing thread's init: the compiled WebAssembly codec, and the native module's path (liblz4, when it has it). */
export interface Lz4Init {
  module: WebAssembly.Module | null;
  native?: string;
}

/** The init for compressing threads of this process. */
export function lz4Init(): Lz4Init {
  const native = nativeFsPath();
  return native === null ? { module: lz4WasmModule() } : { module: lz4WasmModule(), native };
}

/** One thread's compressor. Self-contained: its source text runs on the worker threads. */
function setupCompressor(
  init: Lz4Init,
  lib: { makeCompressor: typeof makeCompressor; makeWasmCodec: typeof makeWasmCodec; lz4Bound: typeof lz4Bound; loadNativeFs: typeof loadNativeFs },
): (task: CompressTask, transfer: Transfer) => Compressed {
  // liblz4 through the native module where it loads on this thread, else WebAssembly, else TypeScript.
  const native = init.native ? lib.loadNativeFs(init.native) : null;
  const compress = native?.lz4Compress ?? (init.module ? lib.makeWasmCodec(init.module).compress : lib.makeCompressor());
  let scratch = new Uint8Array(0);
  return (task, transfer) => {
    const src = new Uint8Array(task.input, 0, task.length);
    if (task.output && task.output.byteLength >= 4 + lib.lz4Bound(src.length)) {
      // Straight into the caller's buffer, which goes back and forth: no allocation per frame here, where it
      // would come from this thread's malloc arena and be freed by the main thread's garbage collector.
      const length = compress(src, new Uint8Array(task.output));
      transfer(task.output);
      transfer(task.input);
      return { out: task.output, length, input: task.input };
    }
    if (scratch.length < 4 + lib.lz4Bound(src.length)) scratch = new Uint8Array(4 + lib.lz4Bound(src.length));
    const n = compress(src, scratch);
    const out = scratch.buffer.slice(0, n);
    transfer(out);
    transfer(task.input);
    return { out, input: task.input };
  };
}

export const lz4CompressBody = workerBody({
  name: 'lz4 compression',
  helpers: { makeCompressor, makeWasmCodec, lz4Bound, loadNativeFs },
  setup: setupCompressor,
});

/** Runs one compression task somewhere (threads shared with other work), moving the buffers listed. */
export type CompressLane = (task: CompressTask, transfer: ArrayBuffer[]) => Promise<Compressed>;

export class Lz4Pool {
  /** Set when the threads are the pool's own. */
  private readonly pool: WorkerPool<Lz4Init, CompressTask, Compressed> | undefined;
  private readonly run: CompressLane;
  /** Input buffers back from the workers, reused for the next jobs. */
  private readonly spare: ArrayBuffer[] = [];
  /** Output buffers given back by `recycle`, for the next jobs; and the ones out with a caller. */
  private readonly spareOut: ArrayBuffer[] = [];
  private readonly outstanding = new WeakSet<ArrayBuffer>();

  /**
   * Workers start on demand, one more whenever a job finds none idle, up to `size`; one job at a time each.
   * With `lane`, the jobs run there instead (lz4CompressBody on threads someone else owns and closes).
   * With `reuseOutputs`, results are written into buffers of OUTPUT_BYTES that the caller hands back
   * with `recycle` once done with them (a caller that does not recycle would keep a 1 MiB buffer alive
   * per result, however small).
   */
  constructor(
    private readonly size = Math.max(1, Math.min(2, availableParallelism())),
    lane?: CompressLane,
    private readonly reuseOutputs = false,
  ) {
    if (lane) {
      this.pool = undefined;
      this.run = lane;
    } else {
      const pool = new WorkerPool(lz4CompressBody, size > 0 ? lz4Init() : { module: null }, { size, perWorker: 1 });
      this.pool = pool;
      this.run = (task, transfer) => pool.run(task, transfer);
    }
  }

  /** `u32 LE size | lz4 block` of `src` (the caller may reuse `src` as soon as this returns). */
  async compress(src: Uint8Array): Promise<Buffer> {
    let input = this.spare.pop();
    if (!input || input.byteLength < src.length) input = new ArrayBuffer(Math.max(src.length, INPUT_BYTES));
    new Uint8Array(input).set(src);
    const output = this.reuseOutputs && src.length <= INPUT_BYTES ? (this.spareOut.pop() ?? new ArrayBuffer(OUTPUT_BYTES)) : undefined;
    const r = await this.run(output ? { input, length: src.length, output } : { input, length: src.length }, output ? [input, output] : [input]);
    if (this.spare.length < this.size * 2 && r.input.byteLength > 0) this.spare.push(r.input);
    if (r.length === undefined) return Buffer.from(r.out);
    this.outstanding.add(r.out);
    return Buffer.from(r.out, 0, r.length);
  }

  /**
   * Takes back a result of `compress` the caller is done with (the socket wrote it), for the next
   * results; anything else is ignored, and so is a second recycle of the same result.
   */
  recycle(result: Buffer): void {
    const ab = result.buffer as ArrayBuffer;
    if (!this.outstanding.has(ab)) return;
    this.outstanding.delete(ab);
    if (this.spareOut.length < SPARE_OUTPUTS) this.spareOut.push(ab);
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}
