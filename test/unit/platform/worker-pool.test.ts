// The worker-pool mechanism every pool of ferry stands on: a body's tasks run
// on worker threads started on demand up to the pool's size, buffers named
// in a transfer list move instead of being copied, a task's error rejects
// that task only; when workers fail the pool gives them up once (one
// FERRY_WORKER warning) and runs the same body on this thread, except a task
// whose memory went down with the worker; close() leaves no worker running.

import { afterEach, describe, expect, it } from 'vitest';
import { lanesBody, WorkerPool, workerBody, workerSource, type LaneTask, type Transfer } from '../../../src/platform/worker-pool.js';

interface Probe {
  /** Echoed back. */
  n: number;
  /** Bytes whose sum is returned (and the buffer handed back). */
  bytes?: ArrayBuffer;
  /** Throws this error code. */
  fail?: string;
  /** Ends the worker thread (on a worker only). */
  exit?: boolean;
}

interface Reply {
  n: number;
  thread: number;
  sum: number;
  bytes?: ArrayBuffer;
}

/** Self-contained, as every body. */
function setupProbe(init: { loadFailsOnWorkers: boolean }, lib: { wt: typeof import('node:worker_threads') }): (t: Probe, transfer: Transfer) => Reply {
  if (init.loadFailsOnWorkers && !lib.wt.isMainThread) throw new Error('this body cannot load on a worker');
  return (t, transfer) => {
    if (t.fail) throw Object.assign(new Error(`task ${t.n} failed`), { code: t.fail });
    if (t.exit && !lib.wt.isMainThread) process.exit(3);
    let sum = 0;
    if (t.bytes) {
      for (const b of new Uint8Array(t.bytes)) sum += b;
      transfer(t.bytes);
    }
    return { n: t.n, thread: lib.wt.threadId, sum, ...(t.bytes ? { bytes: t.bytes } : {}) };
  };
}

const probe = workerBody({ name: 'probe', modules: { wt: 'node:worker_threads' }, helpers: {}, setup: setupProbe });

const warnings: string[] = [];
const onWarning = (w: Error & { code?: string }) => warnings.push(`${w.code}: ${w.message}`);
process.on('warning', onWarning);
let pools: WorkerPool<unknown, Probe, Reply>[] = [];
function pool(size: number, init = { loadFailsOnWorkers: false }, perWorker?: number): WorkerPool<unknown, Probe, Reply> {
  const p = new WorkerPool(probe, init, { size, ...(perWorker ? { perWorker } : {}) }) as WorkerPool<unknown, Probe, Reply>;
  pools.push(p);
  return p;
}

afterEach(async () => {
  await Promise.all(pools.map((p) => p.close()));
  pools = [];
  warnings.length = 0;
});

describe('worker pool', () => {
  it('runs tasks on worker threads started on demand, never more than its size', async () => {
    const p = pool(2);
    expect(p.threads).toBe(0);
    const replies = await Promise.all([1, 2, 3, 4, 5].map((n) => p.run({ n })));
    expect(replies.map((r) => r.n)).toEqual([1, 2, 3, 4, 5]);
    expect(replies.every((r) => r.thread !== 0)).toBe(true);
    expect(new Set(replies.map((r) => r.thread)).size).toBe(2);
    expect(p.threads).toBe(2);
  });

  it('queues tasks beyond its per-worker bound and runs them all, in order, on its one worker', async () => {
    const p = pool(1, undefined, 1);
    const replies = await Promise.all(Array.from({ length: 20 }, (_, n) => p.run({ n })));
    expect(replies.map((r) => r.n)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(new Set(replies.map((r) => r.thread)).size).toBe(1);
  });

  it('moves the buffers of a transfer list, both ways', async () => {
    const p = pool(1);
    const bytes = new Uint8Array([1, 2, 3, 250]).buffer;
    const r = await p.run({ n: 1, bytes }, [bytes]);
    expect(bytes.byteLength).toBe(0); // moved to the worker, not copied
    expect(r.sum).toBe(256);
    expect([...new Uint8Array(r.bytes!)]).toEqual([1, 2, 3, 250]); // moved back
  });

  it("rejects a task that throws with the task's error and code, and runs the others", async () => {
    const p = pool(1);
    const [ok, failed] = await Promise.allSettled([p.run({ n: 1 }), p.run({ n: 2, fail: 'E_PROBE' }), p.run({ n: 3 })]);
    expect(ok).toMatchObject({ status: 'fulfilled', value: { n: 1 } });
    expect(failed).toMatchObject({ status: 'rejected', reason: { message: 'task 2 failed', code: 'E_PROBE' } });
    expect(await p.run({ n: 4 })).toMatchObject({ n: 4 });
    expect(p.threads).toBe(1);
    expect(warnings).toEqual([]);
  });

  it('runs the same body on this thread when its workers fail to load, and says so once', async () => {
    const p = pool(2, { loadFailsOnWorkers: true });
    const replies = await Promise.all([1, 2, 3].map((n) => p.run({ n })));
    expect(replies.map((r) => [r.n, r.thread])).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
    expect(await p.run({ n: 4 })).toMatchObject({ n: 4, thread: 0 });
    expect(p.threads).toBe(0);
    expect(warnings).toEqual(['FERRY_WORKER: probe worker threads failed (this body cannot load on a worker); running on the main thread']);
  });

  it('redoes the tasks of a worker that exits on this thread, except one whose memory went with it', async () => {
    const p = pool(1);
    await p.run({ n: 0 });
    const bytes = new Uint8Array([7]).buffer;
    // In flight at once, in this order: the worker dies on the first, the other two never run there.
    const [dying, carried, plain] = await Promise.allSettled([p.run({ n: 2, exit: true }), p.run({ n: 1, bytes }, [bytes]), p.run({ n: 3 })]);
    expect(carried).toMatchObject({ status: 'rejected', reason: { message: 'a probe worker thread exited (code 3)' } });
    expect(dying).toMatchObject({ status: 'fulfilled', value: { n: 2, thread: 0 } });
    expect(plain).toMatchObject({ status: 'fulfilled', value: { n: 3, thread: 0 } });
    expect(warnings).toHaveLength(1);
  });

  it('runs everything on this thread with size 0, without a warning', async () => {
    const p = pool(0);
    expect(await p.run({ n: 1 })).toMatchObject({ n: 1, thread: 0 });
    expect(p.threads).toBe(0);
    expect(warnings).toEqual([]);
  });

  it('leaves no worker running after close(), and runs later tasks on this thread', async () => {
    const p = pool(2);
    p.start();
    expect(p.threads).toBe(2);
    await p.close();
    expect(p.threads).toBe(0);
    expect(await p.run({ n: 1 })).toMatchObject({ thread: 0 });
    expect(warnings).toEqual([]);
  });

  it('refuses a body written as a method, naming it', () => {
    const methods = { setup(): () => number {
      return () => 1;
    } };
    expect(() => workerSource({ name: 'method body', helpers: {}, setup: methods.setup })).toThrow(/^worker body method body: setup must be a self-contained function/);
  });
});

/** A second body for the lanes test: its own init, its own helper. */
function setupTwice(init: { by: number }, lib: { times: (a: number, b: number) => number }): (t: number) => number {
  return (t) => lib.times(t, init.by);
}
const twice = workerBody({ name: 'twice', helpers: { times: (a: number, b: number) => a * b }, setup: setupTwice });

describe('a body made of lanes', () => {
  it("runs each lane's tasks with that lane's init, on the same threads", async () => {
    const body = lanesBody('probe and twice', { probe, twice });
    const p = new WorkerPool(body, { probe: { loadFailsOnWorkers: false }, twice: { by: 2 } }, { size: 1 });
    try {
      const bytes = new Uint8Array([5, 6]).buffer;
      const [a, b] = await Promise.all([p.run({ lane: 'probe', task: { n: 7, bytes } }, [bytes]), p.run({ lane: 'twice', task: 21 })]);
      expect(a).toMatchObject({ n: 7, sum: 11 });
      expect(bytes.byteLength).toBe(0); // a lane's transfers move as any body's
      expect(b).toBe(42);
      expect((a as Reply).thread).not.toBe(0);
      expect(p.threads).toBe(1);
      await expect(p.run({ lane: 'nothing', task: 1 } as LaneTask)).rejects.toThrow('no lane nothing on this worker');
    } finally {
      await p.close();
    }
  });

  it('refuses two bodies that give one helper name to different functions', () => {
    const other = workerBody({ name: 'other', helpers: { times: (a: number, b: number) => a + b }, setup: setupTwice });
    expect(() => lanesBody('clash', { twice, other })).toThrow('helper times is two different functions');
  });
});
