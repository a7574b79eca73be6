// Compression off the main thread: a small pool of worker threads (one per
// core, at most 2 by default) running the LZ4 block compressor (the wasm
// one, protocol/lz4-wasm.ts, whose compiled module each worker instantiates;
// the TypeScript one if the module is unavailable). Inputs are
// copied into a transferable buffer, results transferred back, so no
// memory is shared and none is held natively. If workers cannot start,
// compression runs on the calling thread.

import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { lz4Bound, lz4Compress, makeCompressor } from '../../protocol/lz4-block.js';
import { lz4WasmModule, makeWasmCodec } from '../../protocol/lz4-wasm.js';

/** Input buffers are allocated at this size (a DATA frame's raw run is at most 1 MiB). */
const INPUT_BYTES = 1024 * 1024;

interface Job {
  id: number;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const makeCompressor = ${makeCompressor.toString()};
const makeWasmCodec = ${makeWasmCodec.toString()};
const compress = workerData.module ? makeWasmCodec(workerData.module).compress : makeCompressor();
const lz4Bound = ${lz4Bound.toString()};
let scratch = new Uint8Array(0);
parentPort.on('message', (m) => {
  const src = new Uint8Array(m.input, 0, m.length);
  if (scratch.length < 4 + lz4Bound(src.length)) scratch = new Uint8Array(4 + lz4Bound(src.length));
  const n = compress(src, scratch);
  const out = scratch.buffer.slice(0, n);
  // The input buffer goes back too, for the next job: no garbage piles up in this isolate.
  parentPort.postMessage({ id: m.id, out, input: m.input }, [out, m.input]);
});
`;

export class Lz4Pool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Array<{ input: ArrayBuffer; length: number; job: Job }> = [];
  /** Input buffers back from the workers, reused for the next jobs. */
  private readonly spare: ArrayBuffer[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;
  private broken = false;

  /** Workers start on demand, one more whenever a job finds none idle, up to `size`. */
  constructor(private readonly size = Math.max(1, Math.min(2, availableParallelism()))) {}

  private spawn(): Worker | undefined {
    try {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: lz4WasmModule() } });
      w.on('message', (m: { id: number; out: ArrayBuffer; input: ArrayBuffer }) => {
        const job = this.jobs.get(m.id);
        this.jobs.delete(m.id);
        if (this.spare.length < this.size * 2) this.spare.push(m.input);
        this.release(w);
        job?.resolve(Buffer.from(m.out));
      });
      w.on('error', (e) => this.fail(e));
      // Idle workers never keep the process alive (listeners first: adding one refs the worker again).
      w.unref();
      this.workers.push(w);
      return w;
    } catch {
      if (this.workers.length === 0) this.broken = true;
      return undefined;
    }
  }

  /** `u32 LE size | lz4 block` of `src` (the caller may reuse `src` as soon as this returns). */
  compress(src: Uint8Array): Promise<Buffer> {
    if (this.broken || this.size === 0) return Promise.resolve(lz4Compress(src));
    let input = this.spare.pop();
    if (!input || input.byteLength < src.length) input = new ArrayBuffer(Math.max(src.length, INPUT_BYTES));
    new Uint8Array(input).set(src);
    const length = src.length;
    return new Promise<Buffer>((resolve, reject) => {
      const job: Job = { id: this.nextId++, resolve, reject };
      const w = this.idle.pop() ?? (this.workers.length < this.size ? this.spawn() : undefined);
      if (w) this.dispatch(w, input, length, job);
      else if (this.broken) resolve(lz4Compress(new Uint8Array(input, 0, length)));
      else this.queue.push({ input, length, job });
    });
  }

  private dispatch(w: Worker, input: ArrayBuffer, length: number, job: Job): void {
    this.jobs.set(job.id, job);
    w.ref();
    w.postMessage({ id: job.id, input, length }, [input]);
  }

  private release(w: Worker): void {
    w.unref();
    const next = this.queue.shift();
    if (next) this.dispatch(w, next.input, next.length, next.job);
    else this.idle.push(w);
  }

  private fail(e: Error): void {
    this.broken = true;
    for (const j of this.jobs.values()) j.reject(e);
    this.jobs.clear();
    for (const q of this.queue.splice(0)) q.job.reject(e);
  }

  async close(): Promise<void> {
    this.broken = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
