// Reads small files whole on worker threads, in batches, with plain
// synchronous calls (open, read, fstat, close). A tree of many small files
// costs per-file overhead: one worker message per batch of files is far
// cheaper for the main thread than four thread-pool operations per file,
// and several workers keep several cold reads in flight. The fstat after
// the read is compared on the worker with the walk's manifest line of the
// file (its inode, size and times), so that a result is a verdict and a
// length, not a stat with bigints for the main thread to compare.
// The threads are a platform/worker-pool.ts pool, the reader's own or the
// full pass's shared one (pass-workers.ts); if workers cannot start, the
// same reads run on the thread pool.

import { close as fsClose, constants, fstat as fsFstat, open as fsOpen, read as fsRead } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { NATIVE_READ_FIELDS, type NativeFs, type NativeXattrList, type NativeXattrsRead } from '../../platform/native-fs.js';
import { WorkerPool, workerBody, type Transfer } from '../../platform/worker-pool.js';

export type SmallRead =
  | 'vanished'
  | {
      data: Buffer;
      /** The file differs from the walk's line after the read (grew, shrank, new times): send it again next pass. */
      changed: boolean;
      /** Call once `data` is no longer needed (copied out): its batch's buffer may then be reused. */
      release?: () => void;
      /**
       * Its xattrs, read on the fd its bytes came through (the native reader, when the reader was asked for
       * them): null for none, else as NativeXattrs lists them. Absent: not read (read them by path).
       */
      xattrs?: NativeXattrList | null;
    };

interface Request {
  path: Buffer;
  size: number;
  line: string;
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
/** Buffers kept: a stream reading ahead alone holds up to 128 entries (tar-producer.ts), four batches, and one more is copied out. */
const SPARE_BUFFERS = 5;
/**
 * And bytes kept, at most: a batch of larger small files (the read-ahead's 4 MiB, and one more file of up to
 * 256 KiB) needs a buffer of up to about 4.25 MiB, and five of those would stay for the rest of the pass; the
 * /usr tree's batches fit 512 KiB buffers, five of which are 2.5 MiB.
 */
const SPARE_BYTES = 8 * 1024 * 1024;
/**
 * How the reader opens files (the body's init): never through a symlink, and without waiting for a
 * writer when a FIFO was put in a file's place (then not read: the native reads check the type first,
 * the others fail the read and the next walk sees the FIFO).
 */
export const SMALL_FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** The body's init: how files are opened, the least a new batch buffer holds. */
export const SMALL_FILE_INIT: { flags: number; minBuffer?: number } = { flags: SMALL_FILE_FLAGS, minBuffer: MIN_BATCH_BUFFER };

/** One batch: paths as latin1 text (byte-exact, and cheaper to clone than Buffer views of shared slabs). */
export interface Batch {
  paths: string[];
  sizes: number[];
  /**
   * Each file's manifest line from the walk (manifest.ts: size, mtime, ctime and inode as decimal text), to
   * compare the fstat after the read with; without, a file is judged on its walked size alone.
   */
  lines?: string[];
  /** A buffer back from an earlier batch (moved to the worker) to read into if it fits; else one is allocated. */
  buffer?: ArrayBuffer;
  /** Read each file's xattrs too, where the reader can (the native one): WorkerResult.xattrs. */
  xattrs?: boolean;
}

export interface WorkerResult {
  /** vanished: gone, not a regular file any more, or another inode; changed: read, but not as the walk saw it. */
  status: 'ok' | 'changed' | 'vanished' | 'error';
  /** The bytes read are data[at, at + got). */
  data?: ArrayBuffer;
  at?: number;
  got?: number;
  message?: string;
  code?: string;
  /** With Batch.xattrs, where the reader read them: null (none) or the list (SmallRead.xattrs). */
  xattrs?: NativeXattrList | null;
}

/**
 * The verdict on a file read whole: `stat` is its fstat after the read as decimal text (inode, size, mtime and
 * ctime in ns), `line` the walk's manifest line. Lines carry decimal text without leading zeros (manifest.ts),
 * so text equality is value equality. Self-contained: its source text runs on the worker threads.
 */
export function judgeRead(
  line: string | undefined,
  size: number,
  got: number,
  isFile: boolean,
  dev: string,
  ino: string,
  statSize: string,
  mtimeNs: string,
  ctimeNs: string,
): 'ok' | 'changed' | 'vanished' {
  if (!isFile) return 'vanished';
  // Fields: path, type, size, mtimeNs, ctimeNs, mode, uid, gid, dev, ino, …
  const f = line === undefined ? undefined : line.split('\t', 10);
  // Another file than the walk's (device and inode): one reached through a directory swapped for a symlink
  // above it since the walk, say. It is not sent under the walk's owner and mode.
  if (f !== undefined && (f[9] !== ino || f[8] !== dev)) return 'vanished';
  if (got > size || String(size) !== statSize) return 'changed';
  if (f === undefined) return 'ok';
  return f[3] === mtimeNs && f[4] === ctimeNs ? 'ok' : 'changed';
}

/**
 * fstat as Node's binding returns it (the stat fields as doubles, walker.ts rawLstatFor's layout), without the
 * BigIntStats object (eighteen bigints and four Dates per file); null when the binding is missing or disagrees
 * with fstatSync on `probeFd` (the caller then uses fstatSync). Self-contained: its source text runs on the workers.
 */
export function rawFstatFor(nodeFs: typeof import('node:fs'), probeFd: number): ((fd: number) => Float64Array) | null {
  try {
    const binding = (process as unknown as { binding(name: string): { fstat?: (fd: number, big: boolean, req: undefined, throwIfNoEntry: boolean) => Float64Array } }).binding('fs');
    const fstat = binding.fstat;
    if (typeof fstat !== 'function') return null;
    const raw = (fd: number): Float64Array => fstat.call(binding, fd, false, undefined, false);
    const a = raw(probeFd);
    const s = nodeFs.fstatSync(probeFd, { bigint: true });
    if (!(a instanceof Float64Array) || a.length < 16) return null;
    const same =
      BigInt(a[0]!) === s.dev && BigInt(a[1]!) === s.mode && BigInt(a[7]!) === s.ino && BigInt(a[8]!) === s.size &&
      BigInt(a[12]!) * 1000000000n + BigInt(a[13]!) === s.mtimeNs && BigInt(a[14]!) * 1000000000n + BigInt(a[15]!) === s.ctimeNs;
    return same ? raw : null;
  } catch {
    return null;
  }
}

/**
 * The buffer a batch is read into: the one given back with it if its files (each its walked size and one
 * byte more) fit, else a new one of at least `minBuffer` bytes. Self-contained: its source text runs on the
 * worker threads.
 */
export function batchBuffer(m: Batch, minBuffer: number): ArrayBuffer {
  let total = 0;
  for (const n of m.sizes) total += n + 1;
  return m.buffer && m.buffer.byteLength >= total ? m.buffer : new ArrayBuffer(Math.max(total, minBuffer));
}

/** One thread's batch reader. Self-contained: its source text runs on the worker threads. */
function setupBatchReader(
  init: { flags: number; minBuffer?: number },
  lib: { fs: typeof import('node:fs'); judgeRead: typeof judgeRead; rawFstatFor: typeof rawFstatFor; batchBuffer: typeof batchBuffer },
): (m: Batch, transfer: Transfer) => WorkerResult[] {
  const fs = lib.fs;
  const judge = lib.judgeRead;
  // Doubles are exact below 2^53; times before 1970 and larger numbers go through fstatSync's bigints.
  const big = 9007199254740991;
  let raw: ((fd: number) => Float64Array) | null | undefined;
  return (m, transfer) => {
    const out: WorkerResult[] = [];
    // One buffer for the whole batch, each file at its own offset (its walked size and one byte more):
    // one allocation and one transfer per batch instead of one per file. Measured (issue 14, /usr full
    // copy): a buffer per file, allocated on the worker's malloc arena and freed on the main thread, left
    // arenas of about 22 MB per worker thread at the agent's peak.
    // A buffer given back by the main thread is reused (measured: docs/file-replication.md, "Buffers reused on
    // a full pass"); a new one gets some room to spare, so that it fits later batches too.
    const whole = new Uint8Array(lib.batchBuffer(m, init.minBuffer ?? 0));
    const all = Buffer.from(whole.buffer);
    let at = 0;
    for (let i = 0; i < m.paths.length; i++) {
      const start = at;
      const size = m.sizes[i]!;
      at += size + 1;
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
        const buf = all.subarray(start, start + size + 1);
        let got = 0;
        // Stops once the walked size is in: a read to see EOF cost one more syscall per file, and a file that grew
        // after this read shows it in the fstat below (its size), one that grew before it in the extra byte.
        for (;;) {
          const n = fs.readSync(fd, buf, got, buf.length - got, got);
          got += n;
          if (n === 0 || got >= size) break;
        }
        if (raw === undefined) raw = lib.rawFstatFor(fs, fd);
        const a = raw === null ? undefined : raw(fd);
        let status: 'ok' | 'changed' | 'vanished';
        if (a !== undefined && a[0]! <= big && a[7]! <= big && a[8]! <= big && a[12]! > 0 && a[14]! > 0) {
          // sec * 1e9 + nsec as text, as a bigint would print (seconds > 0 here): the walker's own formula.
          const mn = a[13]!;
          const cn = a[15]!;
          status = judge(
            m.lines?.[i], size, got, (a[1]! & 0o170000) === 0o100000, `${a[0]}`, `${a[7]}`, `${a[8]}`,
            `${a[12]}${mn < 1e8 ? String(mn).padStart(9, '0') : mn}`, `${a[14]}${cn < 1e8 ? String(cn).padStart(9, '0') : cn}`,
          );
        } else {
          const st = fs.fstatSync(fd, { bigint: true });
          status = judge(m.lines?.[i], size, got, st.isFile(), String(st.dev), String(st.ino), String(st.size), String(st.mtimeNs), String(st.ctimeNs));
        }
        out.push(status === 'vanished' ? { status } : { status, data: whole.buffer, at: start, got });
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
  helpers: { judgeRead, rawFstatFor, batchBuffer },
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
  private spareBytes = 0;
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
  constructor(
    threads: number | ((batch: Batch) => Promise<WorkerResult[]>) = 4,
    /** Ask for each file's xattrs with its bytes (SmallRead.xattrs), where the reader can. */
    private readonly xattrs = false,
  ) {
    if (typeof threads === 'function') {
      this.run = threads;
      this.pool = undefined;
    } else {
      const pool = new WorkerPool(smallFileBody, SMALL_FILE_INIT, { size: threads, fallback: (batch) => readOnPool(batch) });
      this.run = (batch) => pool.run(batch, batch.buffer ? [batch.buffer] : undefined);
      this.pool = pool;
    }
  }

  /**
   * Reads up to size+1 bytes of the file at path (one more than expected, to notice growth), and judges it
   * against `line`, its manifest line from the walk (judgeRead; without one, on its size alone).
   */
  read(path: Buffer, size: number, line?: string): Promise<SmallRead> {
    return new Promise((resolve, reject) => {
      this.pending.push({ path, size, line: line ?? '', resolve, reject });
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
    if (reqs.every((r) => r.line !== '')) batch.lines = reqs.map((r) => r.line);
    if (this.xattrs) batch.xattrs = true;
    const buffer = this.spare.pop();
    if (buffer) {
      this.spareBytes -= buffer.byteLength;
      batch.buffer = buffer;
    }
    this.run(batch).then(
      (out) => {
        // The files of a batch read on a worker share one buffer: back to the spares once every file is copied out.
        // (Read on libuv's pool instead, each file has its own: nothing to reuse.)
        const ok = out.filter((r) => r.data !== undefined);
        const shared = ok[0]?.data;
        let left = ok.length;
        const release =
          shared && ok.every((r) => r.data === shared)
            ? () => {
                if (--left !== 0 || this.spare.length >= SPARE_BUFFERS || this.spareBytes + shared.byteLength > SPARE_BYTES) return;
                this.spare.push(shared);
                this.spareBytes += shared.byteLength;
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
    this.bytesRead += r.got!;
    const data = Buffer.from(r.data!, r.at ?? 0, Math.min(r.got!, req.size));
    const changed = r.status === 'changed';
    const read: Exclude<SmallRead, 'vanished'> = release ? { data, changed, release: once(release) } : { data, changed };
    if (r.xattrs !== undefined) read.xattrs = r.xattrs;
    req.resolve(read);
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

/** An unsigned 64-bit number given as its high and low 32 bits, as exact decimal text. */
export function decimalOfHalves(hi: number, lo: number): string {
  return hi < 2097152 ? String(hi * 4294967296 + lo) : String((BigInt(hi) << 32n) | BigInt(lo));
}

/** Seconds and nanoseconds as one count of nanoseconds in exact decimal text (a bigint's sec * 1e9 + nsec, also before 1970). */
export function nanosText(sec: number, nsec: number): string {
  return String(BigInt(sec) * 1000000000n + BigInt(nsec));
}

/**
 * Native read batches in flight in this process, at most: each holds one of
 * libuv's four pool threads for its files, and the rest of the process
 * (logging, DNS, node:fs callbacks) keeps one.
 */
const NATIVE_BATCHES = 3;
let nativeBatches = 0;
const nativeWaiting: (() => void)[] = [];

/**
 * Batches read by the native module (platform/native-fs.ts readFiles) on
 * libuv's thread pool: one trip to the pool a batch, up to NATIVE_BATCHES
 * batches' cold reads waiting on the disk at once, no JavaScript thread
 * blocked; the results judged here as the workers judge theirs. Why: see
 * readFiles in src/native/ferry-fs.c. The bytes land in the batch's buffer on
 * this thread (never transferred), so the reader's spares are reused as
 * before. A call the module refuses (an error without errno) is read through
 * node:fs on the pool instead.
 */
export function nativeBatchReader(native: NativeFs): (batch: Batch) => Promise<WorkerResult[]> {
  const errors = getSystemErrorMap();
  const SYSCALLS = ['open', 'read', 'fstat'];
  const errnos = osConstants.errno;
  const readBatch = async (batch: Batch): Promise<WorkerResult[]> => {
    const buffer = batchBuffer(batch, MIN_BATCH_BUFFER);
    const paths = Buffer.from(`${batch.paths.join('\0')}\0`, 'latin1');
    let r: Float64Array;
    let xattrs: NativeXattrsRead[] | undefined;
    try {
      if (batch.xattrs) {
        const got = await native.readFiles(paths, Float64Array.from(batch.sizes), buffer, SMALL_FILE_FLAGS, true);
        // (A module built before readFiles took withXattrs gives the fields alone: xattrs are then read by path.)
        if (Array.isArray(got)) [r, xattrs] = got;
        else r = got as unknown as Float64Array;
      } else r = await native.readFiles(paths, Float64Array.from(batch.sizes), buffer, SMALL_FILE_FLAGS);
    } catch (e) {
      if (typeof (e as NodeJS.ErrnoException).errno === 'number') throw e;
      return readOnPool(batch);
    }
    const out: WorkerResult[] = [];
    let at = 0;
    for (let i = 0; i < batch.paths.length; i++) {
      const start = at;
      const size = batch.sizes[i]!;
      at += size + 1;
      const k = i * NATIVE_READ_FIELDS;
      const status = r[k]!;
      if (status < 0) {
        const syscall = SYSCALLS[r[k + 11]!] ?? 'read';
        // Gone, or a symlink now in its place (O_NOFOLLOW): vanished, as the workers say.
        if (syscall === 'open' && (status === -errnos.ENOENT || status === -errnos.ELOOP)) {
          out.push({ status: 'vanished' });
          continue;
        }
        // node:fs's words for it: `CODE: text, open 'path'` (the path as UTF-8 text), or `…, read` without one.
        const [code, text] = errors.get(status) ?? [`E${-status}`, 'unknown error'];
        const where = syscall === 'open' ? `open '${Buffer.from(batch.paths[i]!, 'latin1').toString()}'` : syscall;
        out.push({ status: 'error', message: `${code}: ${text}, ${where}`, code });
        continue;
      }
      const got = r[k + 1]!;
      const verdict = judgeRead(
        batch.lines?.[i], size, got, r[k + 2] === 1, decimalOfHalves(r[k + 12]!, r[k + 13]!),
        decimalOfHalves(r[k + 3]!, r[k + 4]!), decimalOfHalves(r[k + 5]!, r[k + 6]!), nanosText(r[k + 7]!, r[k + 8]!), nanosText(r[k + 9]!, r[k + 10]!),
      );
      if (verdict === 'vanished') {
        out.push({ status: verdict });
        continue;
      }
      const read: WorkerResult = { status: verdict, data: buffer, at: start, got };
      // A number is the -errno of reading them on the fd: left to the path read, which says what fails.
      const x = xattrs?.[i];
      if (x !== undefined && typeof x !== 'number') read.xattrs = x;
      out.push(read);
    }
    return out;
  };
  return async (batch) => {
    // A slot, or wait for one handed over by a batch that ends.
    if (nativeBatches < NATIVE_BATCHES) nativeBatches++;
    else await new Promise<void>((go) => nativeWaiting.push(go));
    try {
      return await readBatch(batch);
    } finally {
      const next = nativeWaiting.shift();
      if (next) next();
      else nativeBatches--;
    }
  };
}

/** A batch read with thread-pool callbacks (when workers are unavailable), files concurrently. */
export function readOnPool(batch: Batch): Promise<WorkerResult[]> {
  return Promise.all(batch.paths.map((p, i) => readOneOnPool(Buffer.from(p, 'latin1'), batch.sizes[i]!, batch.lines?.[i])));
}

function readOneOnPool(path: Buffer, size: number, line: string | undefined): Promise<WorkerResult> {
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
            const status = judgeRead(line, size, total, st.isFile(), String(st.dev), String(st.ino), String(st.size), String(st.mtimeNs), String(st.ctimeNs));
            finish(status === 'vanished' ? { status } : { status, data: data.buffer, got: total });
          });
        });
      more(0);
    });
  });
}
