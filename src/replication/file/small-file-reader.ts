// Reads small files whole on worker threads, in batches, with plain
// synchronous calls (open, read, fstat, close). A tree of many small files
// costs per-file overhead: one worker message per batch of files is far
// cheaper for the main thread than four thread-pool operations per file,
// and several workers keep several cold reads in flight. The fstat after
// the read lets the caller see whether the file changed since the walk.
// The threads are a platform/worker-pool.ts pool, the reader's own or the
// full pass's shared one (pass-workers.ts); if workers cannot start, the
// same reads run on the thread pool.

import { close as fsClose, constants, fstat as fsFstat, open as fsOpen, read as fsRead } from 'node:fs';
import { WorkerPool, workerBody, type Transfer } from '../../platform/worker-pool.js';

export interface SmallFileStat {
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  size: bigint;
  isFile: boolean;
}

export type SmallRead =
  | 'vanished'
  | {
      after: SmallFileStat;
      data: Buffer;
      grew: boolean;
      /** Call once `data` is no longer needed (copied out): its batch's buffer may then be reused. */
      release?: () => void;
    };

interface Request {
  path: Buffer;
  size: number;
  resolve: (r: SmallRead) => void;
  reject: (e: Error) => void;
}

const BATCH = 32;
/**
 * A batch buffer is allocated at least this large (a batch of the /usr
 * tree's small files holds about 300 KiB), so that one back from an earlier
 * batch usually fits the next; at most SPARE_BUFFERS are kept.
 */
const MIN_BATCH_BUFFER = 512 * 1024;
const SPARE_BUFFERS = 3;
/** How the reader opens files (the body's init). */
export const SMALL_FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;
/** The body's init: how files are opened, the least a new batch buffer holds. */
export const SMALL_FILE_INIT: { flags: number; minBuffer?: number } = { flags: SMALL_FILE_FLAGS, minBuffer: MIN_BATCH_BUFFER };

/** One batch: paths as latin1 text (byte-exact, and cheaper to clone than Buffer views of shared slabs). */
export interface Batch {
  paths: string[];
  sizes: number[];
  /** A buffer back from an earlier batch (moved to the worker) to read into if it fits; else one is allocated. */
  buffer?: ArrayBuffer;
}

export interface WorkerResult {
  status: 'ok' | 'vanished' | 'error';
  /** The bytes read are data[at, at + got). */
  data?: ArrayBuffer;
  at?: number;
  got?: number;
  ino?: bigint;
  mtimeNs?: bigint;
  ctimeNs?: bigint;
  size?: bigint;
  isFile?: boolean;
  message?: string;
  code?: string;
}

/** One thread's batch reader. Self-contained: its source text runs on the worker threads. */
function setupBatchReader(init: { flags: number; minBuffer?: number }, lib: { fs: typeof import('node:fs') }): (m: Batch, transfer: Transfer) => WorkerResult[] {
  const fs = lib.fs;
  return (m, transfer) => {
    const out: WorkerResult[] = [];
    // One buffer for the whole batch, each file at its own offset (its walked size and one byte more):
    // one allocation and one transfer per batch instead of one per file. Measured (issue 14, /usr full
    // copy): a buffer per file, allocated on the worker's malloc arena and freed on the main thread, left
    // arenas of about 22 MB per worker thread at the agent's peak.
    // A buffer given back by the main thread is reused (measured: docs/file-replication.md, "Buffers reused on
    // a full pass"); a new one gets some room to spare, so that it fits later batches too.
    let total = 0;
    for (const n of m.sizes) total += n + 1;
    const whole = m.buffer && m.buffer.byteLength >= total ? new Uint8Array(m.buffer) : new Uint8Array(Math.max(total, init.minBuffer ?? 0));
    const all = Buffer.from(whole.buffer);
    let at = 0;
    for (let i = 0; i < m.paths.length; i++) {
      const start = at;
      at += m.sizes[i]! + 1;
      const p = Buffer.from(m.paths[i]!, 'latin1');
      let fd: number;
      try {
        fd = fs.openSync(p, init.flags);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        out.push(err.code === 'ENOENT' || err.code === 'ELOOP' ? { status: 'vanished' } : { status: 'error', message: err.message, code: err.code! });
        continue;
      }
      try {
        const buf = all.subarray(start, start + m.sizes[i]! + 1);
        let got = 0;
        // Stops once the walked size is in: a read to see EOF cost one more syscall per file, and a file that grew
        // after this read shows it in the fstat below (its size), one that grew before it in the extra byte.
        for (;;) {
          const n = fs.readSync(fd, buf, got, buf.length - got, got);
          got += n;
          if (n === 0 || got >= m.sizes[i]!) break;
        }
        const st = fs.fstatSync(fd, { bigint: true });
        out.push({ status: 'ok', data: whole.buffer, at: start, got, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, size: st.size, isFile: st.isFile() });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        out.push({ status: 'error', message: err.message, code: err.code! });
      } finally {
        fs.closeSync(fd);
      }
    }
    transfer(whole.buffer);
    return out;
  };
}

export const smallFileBody = workerBody({
  name: 'small-file reading',
  modules: { fs: 'node:fs' },
  helpers: {},
  setup: setupBatchReader,
});

export class SmallFileReader {
  private readonly run: (batch: Batch) => Promise<WorkerResult[]>;
  /** Set when the threads are the reader's own. */
  private readonly pool: WorkerPool<typeof SMALL_FILE_INIT, Batch, WorkerResult[]> | undefined;
  private pending: Request[] = [];
  private scheduled = false;
  /** Batch buffers whose files were all copied out, for the next batches. */
  private readonly spare: ArrayBuffer[] = [];
  /** Bytes read so far. */
  bytesRead = 0;

  /**
   * Workers start on demand, one more each time every running one already has
   * a batch in flight, up to `threads`: a delta pass that reads a few files
   * does not pay for four thread start-ups, a full pass gets them all.
   * Without workers the same reads go through the thread pool's callbacks:
   * synchronous reads would stall this thread on every cold file.
   * `threads` may instead be threads shared with the rest of the pass
   * (pass-workers.ts): a function running one batch, closed by its owner.
   */
  constructor(threads: number | ((batch: Batch) => Promise<WorkerResult[]>) = 4) {
    if (typeof threads === 'function') {
      this.run = threads;
      this.pool = undefined;
    } else {
      const pool = new WorkerPool(smallFileBody, SMALL_FILE_INIT, { size: threads, fallback: (batch) => readOnPool(batch) });
      this.run = (batch) => pool.run(batch, batch.buffer ? [batch.buffer] : undefined);
      this.pool = pool;
    }
  }

  /** Reads up to size+1 bytes of the file at path (one more than expected, to notice growth). */
  read(path: Buffer, size: number): Promise<SmallRead> {
    return new Promise((resolve, reject) => {
      this.pending.push({ path, size, resolve, reject });
      if (this.pending.length >= BATCH) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const reqs = this.pending;
    this.pending = [];
    const batch: Batch = { paths: reqs.map((r) => r.path.toString('latin1')), sizes: reqs.map((r) => r.size) };
    const buffer = this.spare.pop();
    if (buffer) batch.buffer = buffer;
    this.run(batch).then(
      (out) => {
        // The files of a batch read on a worker share one buffer: back to the spares once every file is copied out.
        // (Read on libuv's pool instead, each file has its own: nothing to reuse.)
        const ok = out.filter((r) => r.status === 'ok');
        const shared = ok[0]?.data;
        let left = ok.length;
        const release =
          shared && ok.every((r) => r.data === shared)
            ? () => {
                if (--left === 0 && this.spare.length < SPARE_BUFFERS) this.spare.push(shared);
              }
            : undefined;
        out.forEach((r, j) => this.settle(reqs[j]!, r, release));
      },
      (e: Error) => reqs.forEach((r) => r.reject(e)),
    );
  }

  private settle(req: Request, r: WorkerResult, release: (() => void) | undefined): void {
    if (r.status === 'vanished') return req.resolve('vanished');
    if (r.status === 'error') {
      const e = new Error(r.message) as NodeJS.ErrnoException;
      if (r.code) e.code = r.code;
      return req.reject(e);
    }
    const after: SmallFileStat = { ino: r.ino!, mtimeNs: r.mtimeNs!, ctimeNs: r.ctimeNs!, size: r.size!, isFile: r.isFile! };
    this.bytesRead += r.got!;
    const data = Buffer.from(r.data!, r.at ?? 0, Math.min(r.got!, req.size));
    req.resolve(release ? { after, data, grew: r.got! > req.size, release: once(release) } : { after, data, grew: r.got! > req.size });
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}

/** `fn`, callable any number of times, run the first time only. */
function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    fn();
  };
}

/** A batch read with thread-pool callbacks (when workers are unavailable), files concurrently. */
export function readOnPool(batch: Batch): Promise<WorkerResult[]> {
  return Promise.all(batch.paths.map((p, i) => readOneOnPool(Buffer.from(p, 'latin1'), batch.sizes[i]!)));
}

function readOneOnPool(path: Buffer, size: number): Promise<WorkerResult> {
  return new Promise((resolve) => {
    const failed = (e: NodeJS.ErrnoException): WorkerResult => ({ status: 'error', message: e.message, ...(e.code ? { code: e.code } : {}) });
    fsOpen(path, SMALL_FILE_FLAGS, (err, fd) => {
      if (err) return resolve(err.code === 'ENOENT' || err.code === 'ELOOP' ? { status: 'vanished' } : failed(err));
      const data = new Uint8Array(size + 1);
      const finish = (r: WorkerResult) => fsClose(fd, () => resolve(r));
      const more = (got: number) =>
        fsRead(fd, data, got, data.length - got, got, (rerr, n) => {
          if (rerr) return finish(failed(rerr));
          if (n > 0 && got + n < size) return more(got + n); // the walked size is in: no read for EOF (see above)
          const total = got + n;
          fsFstat(fd, { bigint: true }, (serr, st) => {
            if (serr) return finish(failed(serr));
            finish({ status: 'ok', data: data.buffer, got: total, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, size: st.size, isFile: st.isFile() });
          });
        });
      more(0);
    });
  });
}
