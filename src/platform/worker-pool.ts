// Running a function on worker threads, the one way ferry does it (the LZ4
// compression pool, the walker's directory listers, the small-file reader,
// and a full file pass's one pool that runs those three as lanes).
// Owns spawning, dispatch, queueing, the fallback to the calling thread and
// shutdown; knows nothing of what the tasks do.
//
// Why workers are built from source text: the single executable
// (packaging/sea) is one bundled script with no files beside it, so a Worker
// cannot be started from a file. Each worker is started with `eval: true`
// from text assembled out of the body's own functions (`fn.toString()`).
// That text is compiled alone inside the worker, so a body and its helpers
// must be self-contained: they use only their parameters, JavaScript and
// Node globals, the node: built-ins named in `modules` and the helpers named
// in `helpers` (both reach them through the `lib` argument, never by a
// module-level name). An import used inside a body would work on the calling
// thread and fail only inside the worker: test/unit/platform/worker-bodies
// starts every body in a real worker and checks its text names nothing from
// outside. What cannot be shipped as text (a compiled WebAssembly module)
// travels in `init` (the worker's workerData).
//
// Policy, the same for every pool:
// - workers start on demand, one more whenever a task finds every running
//   one busy, up to `size` (`start()` starts them all at once);
// - a task goes to the least busy worker; beyond `perWorker` tasks in flight
//   on each, tasks wait in a queue on this thread (in arrival order; callers
//   bound what they submit: the send window, the walk's look-ahead, the tar
//   producer's read-ahead);
// - a worker is referenced only while it has tasks in flight: idle workers
//   never keep the process alive;
// - when workers cannot start, or one fails (an uncaught error, an exit),
//   the pool stops using workers for good, once: it terminates them, warns
//   once (process warning FERRY_WORKER), and runs tasks in flight, queued and
//   to come through the fallback (by default the same body on this thread);
//   a task in flight that transferred memory to the failed worker cannot be
//   redone (the memory went with it) and rejects with the worker's error;
// - an error a task throws rejects that task only;
// - close() terminates every worker; later tasks run through the fallback.

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Adds an ArrayBuffer to the reply's transfer list (a no-op on the calling thread). */
export type Transfer = (buffer: ArrayBuffer) => void;

/** What a body's setup returns: runs one task (synchronously) in its thread. */
export type TaskHandler<Task, Result> = (task: Task, transfer: Transfer) => Result;

/**
 * A function to run on worker threads. `setup`, and every helper, must be a
 * self-contained `function` (or arrow function), not a method: see the
 * header. `Lib` is what setup receives as its second argument: the modules
 * (by their local names) and the helpers.
 */
export interface WorkerBody<Init, Task, Result, Lib extends object = object, M extends keyof Lib = never> {
  /** Names the body in warnings and errors. */
  readonly name: string;
  /** node: built-ins the body uses, by the name under which `lib` carries them. */
  readonly modules?: { readonly [K in M]: `node:${string}` };
  /** Self-contained functions the body uses, by the name under which `lib` carries them. */
  readonly helpers: Omit<Lib, M>;
  /** Runs once per thread with the pool's init data; returns the task handler. */
  setup(init: Init, lib: Lib): TaskHandler<Task, Result>;
}

/** Declares a body (only for type inference: the value is returned as is). */
export function workerBody<Init, Task, Result, Lib extends object, M extends keyof Lib = never>(
  body: WorkerBody<Init, Task, Result, Lib, M>,
): WorkerBody<Init, Task, Result, Lib, M> {
  return body;
}

/** A body as the pool sees it: what its lib holds is the body's own business. */
export type PoolBody<Init, Task, Result> = WorkerBody<Init, Task, Result, object, never>;

/** A task for a body made of lanes (lanesBody): which lane runs it, and the lane's own task. */
export interface LaneTask {
  lane: string;
  task: unknown;
}

/** Runs each worker's lanes: every lane's setup once, with its own init, then each task by its lane. Self-contained. */
function setupLanes(init: Record<string, unknown>, lib: Record<string, unknown>): TaskHandler<LaneTask, unknown> {
  const handlers: Record<string, TaskHandler<unknown, unknown>> = {};
  for (const lane of Object.keys(init)) {
    const setup = lib[`setup:${lane}`] as (i: unknown, l: unknown) => TaskHandler<unknown, unknown>;
    handlers[lane] = setup(init[lane], lib);
  }
  return (m, transfer) => {
    const h = handlers[m.lane];
    if (!h) throw new Error(`no lane ${m.lane} on this worker`);
    return h(m.task, transfer);
  };
}

/**
 * One body that runs several bodies' tasks on the same threads: its init
 * holds each lane's init (by lane name; a lane left out is not set up), its
 * tasks are `{ lane, task }`. One pool of a few threads instead of a pool per
 * body: each worker thread is a V8 isolate of its own (about 8.5 MB before it
 * does anything, 20–45 MB busy, and its own glibc malloc arena), and the
 * bodies of a full file pass (listing, reading, compressing) do not keep a
 * thread each busy on a 2-core machine (docs/file-replication.md, issue 14).
 * The bodies' modules and helpers are merged: a name two bodies use must
 * mean the same module or the same function.
 */
export function lanesBody(name: string, lanes: Record<string, PoolBody<any, any, any>>): PoolBody<Record<string, unknown>, LaneTask, unknown> {
  const modules: Record<string, string> = {};
  const helpers: Record<string, unknown> = {};
  for (const [lane, body] of Object.entries(lanes)) {
    for (const [k, spec] of Object.entries(body.modules ?? {})) {
      if (k in modules && modules[k] !== spec) throw new Error(`worker body ${name}: module ${k} means ${modules[k]} and ${String(spec)}`);
      modules[k] = String(spec);
    }
    for (const [k, fn] of Object.entries(body.helpers)) {
      if (k in helpers && helpers[k] !== fn) throw new Error(`worker body ${name}: helper ${k} is two different functions`);
      helpers[k] = fn;
    }
    helpers[`setup:${lane}`] = body.setup;
  }
  return { name, modules, helpers, setup: setupLanes } as unknown as PoolBody<Record<string, unknown>, LaneTask, unknown>;
}

const sources = new WeakMap<object, string>();

/**
 * The text a worker of `body` runs. Each function is checked to be an
 * expression on its own (a method's text is not), so a body written the
 * wrong way fails here, at its first use, with its name.
 */
export function workerSource<Init, Task, Result>(body: PoolBody<Init, Task, Result>): string {
  let text = sources.get(body);
  if (text !== undefined) return text;
  const fnText = (what: string, fn: unknown): string => {
    if (typeof fn !== 'function') throw new Error(`worker body ${body.name}: ${what} is not a function`);
    const src = fn.toString();
    try {
      new Function(`return (${src});`);
    } catch (e) {
      throw new Error(`worker body ${body.name}: ${what} must be a self-contained function or arrow function, not a method (${(e as Error).message})`);
    }
    return src;
  };
  const lines = ["'use strict';", "const { parentPort, workerData } = require('node:worker_threads');", 'const lib = {};'];
  for (const [name, spec] of Object.entries(body.modules ?? {})) {
    if (!/^node:[a-z_/]+$/.test(String(spec))) throw new Error(`worker body ${body.name}: module ${name} must be a node: built-in, not ${String(spec)}`);
    lines.push(`lib[${JSON.stringify(name)}] = require(${JSON.stringify(spec)});`);
  }
  for (const [name, fn] of Object.entries(body.helpers)) lines.push(`lib[${JSON.stringify(name)}] = (${fnText(`helper ${name}`, fn)});`);
  lines.push(
    `const handle = (${fnText('setup', body.setup)})(workerData, lib);`,
    'let transfer = [];',
    'const keep = (b) => { transfer.push(b); };',
    'parentPort.on("message", (m) => {',
    '  let reply;',
    '  try {',
    '    reply = { id: m.id, value: handle(m.task, keep) };',
    '  } catch (e) {',
    '    transfer = [];',
    '    reply = { id: m.id, error: { message: String((e && e.message) || e), code: e && e.code, name: e && e.name } };',
    '  }',
    '  const t = transfer;',
    '  transfer = [];',
    '  parentPort.postMessage(reply, t);',
    '});',
  );
  text = lines.join('\n');
  sources.set(body, text);
  return text;
}

/** The body's task handler on the calling thread (what the pool's default fallback runs), for a fallback that runs some tasks here. */
export function handlerHere<Init, Task, Result>(body: PoolBody<Init, Task, Result>, init: Init): (task: Task) => Result {
  const handle = body.setup(init, localLib(body));
  return (t) => handle(t, noTransfer);
}

/** The body's lib on the calling thread: the same helpers and modules, from this process's imports. */
function localLib<Init, Task, Result>(body: PoolBody<Init, Task, Result>): object {
  const lib: Record<string, unknown> = { ...body.helpers };
  const req = createRequire(import.meta.url);
  for (const [name, spec] of Object.entries(body.modules ?? {})) lib[name] = req(String(spec));
  return lib;
}

export interface WorkerPoolOptions<Task, Result> {
  /** Workers at most (0: everything runs through the fallback). */
  size: number;
  /** Tasks in flight on one worker before tasks queue here (default: no limit). */
  perWorker?: number;
  /**
   * How a task runs without workers; default: the body's handler on this
   * thread. A pool whose body blocks on I/O gives one that does not.
   */
  fallback?: (task: Task) => Result | Promise<Result>;
  /** Each worker's V8 heap limits (node:worker_threads resourceLimits); default WORKER_HEAP_LIMITS. */
  resourceLimits?: import('node:worker_threads').ResourceLimits;
}

/**
 * A worker's young generation, capped. With V8's default each thread that
 * allocates steadily (a lister's lines, a reader's results) grows its own
 * young generation to tens of MB: four such threads took 230 MB of RSS
 * against 126 MB with 4 MB (measured 2026-12-05, Node 20, one process, four
 * threads allocating short strings), and a full file pass's agent ran eight
 * (2 listers, 4 small-file readers, 2 compressors; one lanes pool of one
 * thread on 2 cores since, replication/file/pass-workers.ts). The data the workers move
 * (file bytes, frames) lives in ArrayBuffers outside the heap either way.
 */
export const WORKER_HEAP_LIMITS = { maxYoungGenerationSizeMb: 4 } as const;

interface Slot {
  w: Worker;
  load: number;
}

interface InFlight<Task, Result> {
  task: Task;
  transferred: boolean;
  slot: Slot;
  resolve: (r: Result) => void;
  reject: (e: Error) => void;
}

interface Queued<Task, Result> {
  task: Task;
  transfer: ArrayBuffer[] | undefined;
  resolve: (r: Result) => void;
  reject: (e: Error) => void;
}

const noTransfer: Transfer = () => {};

export class WorkerPool<Init, Task, Result> {
  private readonly slots: Slot[] = [];
  private readonly inFlight = new Map<number, InFlight<Task, Result>>();
  private readonly queue: Queued<Task, Result>[] = [];
  private nextId = 1;
  private size: number;
  private readonly perWorker: number;
  /** Set once workers are given up (failed, could not start, or closed). */
  private stopped = false;
  private local: ((task: Task) => Result | Promise<Result>) | undefined;

  constructor(
    private readonly body: PoolBody<Init, Task, Result>,
    private readonly init: Init,
    private readonly options: WorkerPoolOptions<Task, Result>,
  ) {
    this.size = options.size;
    this.perWorker = options.perWorker ?? Infinity;
    if (this.size > 0) workerSource(body);
  }

  /** Workers running now (0 once tasks run on this thread). */
  get threads(): number {
    return this.slots.length;
  }

  /** A task given now would start at once: a running worker has none in flight, or another may start. */
  get idle(): boolean {
    return !this.stopped && (this.slots.length < this.size || this.slots.some((s) => s.load === 0));
  }

  /** Starts every worker now instead of on demand. */
  start(): void {
    while (!this.stopped && this.slots.length < this.size && this.spawn()) {
      /* one more */
    }
  }

  /** Runs one task; `transfer` lists buffers of the task moved (not copied) to the worker. */
  run(task: Task, transfer?: ArrayBuffer[]): Promise<Result> {
    if (this.stopped || this.size === 0) return this.runHere(task);
    return new Promise<Result>((resolve, reject) => {
      const slot = this.pick();
      if (slot) this.dispatch(slot, task, transfer, resolve, reject);
      else if (this.stopped) this.runHere(task).then(resolve, reject);
      else this.queue.push({ task, transfer, resolve, reject });
    });
  }

  /** The least busy worker, a new one if all are busy and there is room, undefined if all are full. */
  private pick(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) if (!best || s.load < best.load) best = s;
    if ((!best || best.load > 0) && this.slots.length < this.size) best = this.spawn() ?? best;
    return best && best.load < this.perWorker ? best : undefined;
  }

  private spawn(): Slot | undefined {
    let w: Worker;
    try {
      w = new Worker(workerSource(this.body), {
        eval: true,
        workerData: this.init,
        resourceLimits: this.options.resourceLimits ?? WORKER_HEAP_LIMITS,
      });
    } catch (e) {
      // No more than are running: with none, nothing runs on workers.
      this.size = this.slots.length;
      if (this.slots.length === 0) this.stop(e as Error);
      return undefined;
    }
    const slot: Slot = { w, load: 0 };
    w.on('message', (m: { id: number; value?: Result; error?: { message: string; code?: string; name?: string } }) => this.settle(slot, m));
    w.on('error', (e) => this.stop(e));
    w.on('exit', (code) => this.stop(new Error(`a ${this.body.name} worker thread exited (code ${code})`)));
    // Idle workers never keep the process alive (listeners first: adding one refs the worker again).
    w.unref();
    this.slots.push(slot);
    return slot;
  }

  private dispatch(slot: Slot, task: Task, transfer: ArrayBuffer[] | undefined, resolve: (r: Result) => void, reject: (e: Error) => void): void {
    const id = this.nextId++;
    this.inFlight.set(id, { task, transferred: transfer !== undefined && transfer.length > 0, slot, resolve, reject });
    if (slot.load++ === 0) slot.w.ref();
    slot.w.postMessage({ id, task }, transfer ?? []);
  }

  private settle(slot: Slot, m: { id: number; value?: Result; error?: { message: string; code?: string; name?: string } }): void {
    const job = this.inFlight.get(m.id);
    if (!job) return;
    this.inFlight.delete(m.id);
    if (--slot.load === 0) slot.w.unref();
    const next = slot.load < this.perWorker ? this.queue.shift() : undefined;
    if (next) this.dispatch(slot, next.task, next.transfer, next.resolve, next.reject);
    if (m.error) job.reject(Object.assign(new Error(m.error.message), m.error.code ? { code: m.error.code } : {}));
    else job.resolve(m.value as Result);
  }

  /** Gives up on workers, once: everything in flight or queued, and everything later, runs here. */
  private stop(cause: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    process.emitWarning(`${this.body.name} worker threads failed (${cause.message}); running on the main thread`, { code: 'FERRY_WORKER' });
    this.stopWorkers();
    const jobs = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const j of jobs) {
      if (j.transferred) j.reject(cause);
      else this.runHere(j.task).then(j.resolve, j.reject);
    }
    for (const q of this.queue.splice(0)) this.runHere(q.task).then(q.resolve, q.reject);
  }

  private stopWorkers(): Promise<unknown> {
    const slots = this.slots.splice(0);
    for (const s of slots) s.w.removeAllListeners('exit');
    return Promise.all(slots.map((s) => s.w.terminate()));
  }

  private runHere(task: Task): Promise<Result> {
    if (!this.local) {
      if (this.options.fallback) this.local = this.options.fallback;
      else {
        const handle = this.body.setup(this.init, localLib(this.body));
        this.local = (t) => handle(t, noTransfer);
      }
    }
    try {
      return Promise.resolve(this.local(task));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** Terminates every worker (tasks still in flight on them never settle); later tasks run through the fallback. */
  async close(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    this.inFlight.clear();
    await this.stopWorkers();
  }
}

/**
 * Starts one worker of `body`, runs one task in it and stops it: rejects
 * with the worker's own error when the body cannot load there (no fallback).
 * For the test that every body is self-contained.
 */
export function runInWorker<Init, Task, Result>(
  body: PoolBody<Init, Task, Result>,
  init: Init,
  task: Task,
  transfer: ArrayBuffer[] = [],
): Promise<Result> {
  return new Promise<Result>((resolve, reject) => {
    const w = new Worker(workerSource(body), { eval: true, workerData: init });
    const done = (f: () => void) => {
      w.removeAllListeners();
      w.on('error', () => {});
      void w.terminate().then(f);
    };
    w.on('message', (m: { value?: Result; error?: { message: string } }) =>
      done(() => (m.error ? reject(new Error(`${body.name}: ${m.error.message}`)) : resolve(m.value as Result))),
    );
    w.on('error', (e) => done(() => reject(e)));
    w.on('exit', (code) => done(() => reject(new Error(`${body.name} worker exited (code ${code})`))));
    w.postMessage({ id: 1, task }, transfer);
  });
}
