// The worker threads of full file passes: one pool whose threads list
// directories (walker.ts's lister), read small files (small-file-reader.ts)
// and compress the stream's frames (protocol/lz4-pool.ts), each a lane of
// one platform/worker-pool.ts body. Owns the pool's size and its fallback;
// knows nothing of what the lanes do. Whoever makes it closes it: pass.ts
// for a pass run alone (`ferry migrate --files`, a MIGRATE_FILE task), the
// whole-server run (migration/whole-server.ts) for all of its passes.
//
// One pool for a whole-server run (measured, docs/file-replication.md "A
// whole server, one pool for the run"): with a pool per pass, two passes at
// once (`--parallel 2`) held two isolates, and every small volume paid a
// thread's start-up and V8's compiling of the lanes again. The lanes keep
// nothing of one pass for the next: the lister's init (the walk's root,
// st_dev, excludes) travels with each listing (walker.ts sharedListerBody),
// reads and compression take none; each pass gets its own compressor
// (`lz4()`: its reused buffers are its stream sender's), so passes share
// the threads, at the same time or one after another. The price of sharing:
// a worker that dies (an uncaught error, an exit) stops the pool for every
// pass on it, as worker-pool.ts does for any pool — their tasks in flight
// that transferred memory reject (those passes fail and are resumed by the
// next run) and every later listing, read and compression of the run goes
// to the fallback on the main thread (slower, not wrong).
//
// Why one pool (measured, issue 14, docs/file-replication.md "One pool of
// worker threads for a full pass"): the pass had a pool per body — two
// listers, four readers, two compressors — eight V8 isolates, each about
// 8.5 MB before it did anything and 20–45 MB busy, with a glibc malloc arena
// each, and V8 compiling the same code eight times. On two cores none of
// them keeps a thread busy: the listers and readers mostly wait on the disk,
// the compressors used 1.7 s of CPU in a 10 s pass.

import { availableParallelism } from 'node:os';
import { handlerHere, lanesBody, WorkerPool, type LaneTask } from '../../platform/worker-pool.js';
import { lz4CompressBody, lz4Init, Lz4Pool, type CompressTask, type Compressed } from '../../protocol/lz4-pool.js';
import { sharedListerBody, type DirListing, type Lister, type ListerInit, type WalkListTask } from './walker.js';
import { readOnPool, SMALL_FILE_INIT, smallFileBody, type Batch, type WorkerResult } from './small-file-reader.js';

/** The threads' body: the three lanes (exported for the test that every worker body loads in a worker). */
export const passWorkersBody = lanesBody('file pass', { list: sharedListerBody, read: smallFileBody, lz4: lz4CompressBody });
const body = passWorkersBody;

/**
 * Threads: one fewer than the cores (the main thread builds the stream),
 * at least one, at most 3. Measured on 2 cores (issue 14, /usr full copy,
 * test/bench/file-full-usr.sh, alternating runs of the builds, load 5, the
 * same queues): one thread against two gave agent peak RSS 194 / 218 MB
 * against 219 / 239 MB (one V8 isolate and one glibc malloc arena less),
 * agent CPU 7.2 / 7.0 s against 8.0 / 7.9 s, wall 8.0 / 8.2 s against
 * 8.7 / 13.0 s; with the older queues 235 / 218 against 259 / 256 MB. On two
 * cores a second thread bought no speed (the receiver is what a pass waits on).
 */
export function passThreads(): number {
  return Math.max(1, Math.min(3, availableParallelism() - 1));
}

export class PassWorkers {
  private pool: WorkerPool<Record<string, unknown>, LaneTask, unknown> | undefined;
  private walks = 0;
  private closed = false;
  /** The lanes' init, made once (it carries the compiled LZ4 module). */
  private lanesInit: Record<string, unknown> | undefined;
  /** The body's handler on this thread: the fallback's listings and compression, and compression while the threads are busy. */
  private here: ((m: LaneTask) => unknown) | undefined;

  constructor(private readonly size = passThreads()) {}

  /** A walk's lister on these threads (any number of walks, one after another or at once). */
  readonly lister = (init: ListerInit): Lister => {
    const pool = this.threads();
    const walk = ++this.walks;
    return {
      get threads() {
        return pool.threads;
      },
      start: () => pool.start(),
      list: (dir) => pool.run({ lane: 'list', task: { walk, init, dir } satisfies WalkListTask }) as Promise<DirListing>,
      // Closed by the owner of these workers, not by the walk.
      close: async () => {},
    };
  };

  /** Reads one batch of small files on these threads. */
  readonly read = (batch: Batch): Promise<WorkerResult[]> =>
    this.threads().run({ lane: 'read', task: batch }, batch.buffer ? [batch.buffer] : undefined) as Promise<WorkerResult[]>;

  /** A compressor whose jobs run on these threads: one per pass (its reused outputs go back through that pass's stream sender). */
  lz4(): Lz4Pool {
    // Outputs reused: the stream sender recycles each once the socket wrote it (stream-sender.ts).
    return new Lz4Pool(
      this.size,
      (task: CompressTask, transfer) => {
        const pool = this.threads();
        // A frame goes to the threads only while one of them has nothing to do; else it is compressed here
        // at once (the same codec, into the same reused buffers). Measured (whole-server bench,
        // docs/file-replication.md "Where the whole server's / waits"): the pool thread of the largest
        // volume's pass was busy all the time (cold reads, listings, compression), its frames waited behind
        // read batches, and the main thread was idle 50-65 % of the time.
        if (pool.threads > 0 && !pool.idle) return Promise.resolve(this.hereHandler()({ lane: 'lz4', task }) as Compressed);
        return pool.run({ lane: 'lz4', task }, transfer) as Promise<Compressed>;
      },
      true,
    );
  }

  private lanes(): Record<string, unknown> {
    return (this.lanesInit ??= { list: {}, read: SMALL_FILE_INIT, lz4: lz4Init() });
  }

  private hereHandler(): (m: LaneTask) => unknown {
    return (this.here ??= handlerHere(body, this.lanes()));
  }

  /** The pool, made at first use (workers start on demand, or all at once when a walk starts). */
  private threads(): WorkerPool<Record<string, unknown>, LaneTask, unknown> {
    if (this.pool) return this.pool;
    this.pool = new WorkerPool(body, this.lanes(), {
      size: this.closed ? 0 : this.size,
      // Without workers: listings and compression on this thread (as their own pools do), reads on libuv's pool.
      fallback: (m) => (m.lane === 'read' ? readOnPool(m.task as Batch) : this.hereHandler()(m)),
    });
    return this.pool;
  }

  /**
   * Starts the threads now instead of at the first walk: a whole-server run
   * does it while the receiver lays out, so a thread's start-up (its isolate,
   * the lanes' modules, the LZ4 codec) is not on the first copy's path.
   */
  warm(): void {
    if (!this.closed) this.threads().start();
  }

  /** Stops the threads: tasks still in flight on them never settle (let every pass on them end first); later tasks run on this thread. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.close();
  }
}
