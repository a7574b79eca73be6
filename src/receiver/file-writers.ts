// Writes small regular files for the file extractor on worker threads, in
// batches: each file is created under its final name (O_CREAT|O_EXCL|
// O_NOFOLLOW: only a name nothing holds; when something does, under its
// temporary name, then renamed over it), written, given its owner/mode/mtime
// through the open descriptor and closed, by synchronous calls on a worker
// (the native module's writeFiles, a batch a call; node:fs without it). A failed write removes the file it created (under whichever name). The extractor decides
// which files may go here (see file-extractor.ts: new files in a directory
// this session created, without xattrs) and keeps everything else, and every
// ordering rule, on its own thread; this module only owns the batches, the
// worker body, the bound on bytes in flight, and telling the extractor when
// what it handed over is in place (`afterWritten`), in stream order.
// Never touches a directory, never removes anything but a file it created
// itself after a failed write.
//
// Why (measured 2026-12-06, 43,000-entry /usr tree, full pass into xfs): the
// receiver's one thread was what the pass waited on, and five of its calls
// per plain small file (open, write, futimes, close, rename) were system
// calls that block it. A worker message per batch of files costs the main
// thread far less than those calls (the agent reads small files the same
// way, replication/file/small-file-reader.ts).
//
// Why the final name directly (2026-12-06, see docs/file-replication.md "The
// receiver's CPU on a full pass"): a rename per small file is an xfs log
// transaction. It is sound only for what the extractor sends here: new files
// in a directory this session created (mkdir, it did not exist), so nothing
// of an earlier pass is in the way, and the extractor's "created" does not
// outlive the session. A cut (kill -9) may leave a partial file under its
// real name in such a directory; the pass's resume point never passes it
// (`afterWritten`), so the resumed pass sends it again, and by then the
// directory exists: the extractor takes its careful path (temporary name,
// rename over the partial file). A name already taken (a stream naming a path
// twice, anything planted there) makes O_EXCL refuse, and that file goes the
// careful way here too.

import { constants } from 'node:fs';
import { WorkerPool, workerBody, type Transfer } from '../platform/worker-pool.js';
import { loadNativeFs, nativeFsPath, NATIVE_WRITE_FIELDS } from '../platform/native-fs.js';

/** Numbers per file in a batch's `files` (offsets and lengths into `buf`, then metadata): the native writer's. */
const FIELDS = NATIVE_WRITE_FIELDS;
/** Files per batch at most: one message per this many files. */
const BATCH_FILES = 256;
/**
 * Bytes of one batch buffer (paths and bodies). Buffers are reused: at most IN_FLIGHT + 2 exist (10 MiB).
 * Larger than first (64 files / 512 KiB, 2026-12-06) because each batch is two messages that wake a thread, and
 * the main thread's postMessage was its largest single item in a profiled /usr pass (0.7 s, ~0.8 ms a batch).
 */
const BATCH_BYTES = 2 * 1024 * 1024;
/**
 * Largest body sent to a writer: larger files stay on the extractor's thread, written as their bytes arrive (a
 * few large files are not what costs per-file calls; copying them into a batch would only add a copy).
 */
export const SMALL_FILE_BYTES = 128 * 1024;
/** Batches handed to the writers and not yet in place, at most (memory, and how far the resume point may lag). */
const IN_FLIGHT = 3;

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

interface WriteTask {
  /** Temporary and final paths and the bodies, at the offsets `files` gives. Transferred both ways. */
  buf: ArrayBuffer;
  /** Each new file with a body is truncated to 0 before it (btrfs: its data goes to disk on close; see BatchWriter.flushOnClose). */
  flushOnClose: boolean;
  /**
   * FIELDS (13: the bodies below say it as a number, being self-contained) numbers per file: tmpOff, tmpLen,
   * dstOff, dstLen, dataOff, dataLen, createMode, chmod (-1: none), uid (-1: no chown), gid (-1: unchanged),
   * mtime's whole seconds (rounded down) and nanoseconds, truncate (-1: none). Transferred.
   */
  files: Float64Array;
}

/** A writer thread's init: the open flags, and the native module's path (its writeFiles, when it loads there). */
interface WriterInit {
  flags: number;
  native?: string;
}

interface WriteResult {
  /** Files in place (a prefix of the batch). */
  done: number;
  buf: ArrayBuffer;
  /** The first file that failed (its temporary file removed); the files after it were not written. */
  error?: { index: number; message: string; code?: string };
}

/**
 * One thread's batch writer. Self-contained: its source text runs on the worker threads. The native module's
 * writeFiles (ferry-fs.c) where it loads on this thread: the same steps in the same order, without a node:fs
 * call per step (measured: docs/file-replication.md, "The receiver's small files written from C"); else
 * node:fs, below.
 */
function setupBatchWriter(
  init: WriterInit,
  lib: { fs: typeof import('node:fs'); util: typeof import('node:util'); loadNativeFs: typeof loadNativeFs },
): (t: WriteTask, transfer: Transfer) => WriteResult {
  const fs = lib.fs;
  const writeFiles = init.native ? lib.loadNativeFs(init.native)?.writeFiles : undefined;
  // node:fs's names for the steps (its errors read `CODE: text, open 'path'`, `…, rename 'from' -> 'to'`).
  const STEPS = ['open', 'write', 'ftruncate', 'fchown', 'fchmod', 'futime', 'close', 'rename', 'open'];
  let errors: Map<number, [string, string]> | undefined;
  if (writeFiles) {
    return (t, transfer) => {
      const r = writeFiles(t.buf, t.files, t.flushOnClose);
      transfer(t.buf);
      const done = r[0]!;
      if (r[1]! < 0) return { done, buf: t.buf };
      const k = r[1]! * 13;
      const step = r[3]!;
      const [code, text] = (errors ??= lib.util.getSystemErrorMap()).get(-r[2]!) ?? [`E${r[2]}`, 'unknown error'];
      const name = (off: number) => Buffer.from(t.buf, t.files[k + off]!, t.files[k + off + 1]!).toString();
      // The open of the final name (0), of the temporary one (8: the final one was taken), the rename of one to the other (7).
      const where = step === 0 ? ` '${name(2)}'` : step === 8 ? ` '${name(0)}'` : step === 7 ? ` '${name(0)}' -> '${name(2)}'` : '';
      return { done, buf: t.buf, error: { index: r[1]!, message: `${code}: ${text}, ${STEPS[step] ?? 'write'}${where}`, code } };
    };
  }
  return (t, transfer) => {
    const b = Buffer.from(t.buf);
    const f = t.files;
    const n = f.length / 13;
    let i = 0;
    let error: WriteResult['error'];
    for (; i < n; i++) {
      const k = i * 13;
      const tmp = b.subarray(f[k]!, f[k]! + f[k + 1]!);
      const dst = b.subarray(f[k + 2]!, f[k + 2]! + f[k + 3]!);
      let fd = -1;
      /** The name the file was created under (null: none yet). */
      let made: Buffer | null = null;
      try {
        try {
          fd = fs.openSync(dst, init.flags, f[k + 6]!);
          made = dst;
        } catch (e) {
          // Something holds the name (O_EXCL never follows or replaces it): the careful way, renamed over it below.
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          fd = fs.openSync(tmp, init.flags, f[k + 6]!);
          made = tmp;
        }
        if (t.flushOnClose && f[k + 5]! > 0) {
          try {
            fs.ftruncateSync(fd, 0);
          } catch {
            /* only a hint (btrfs flushes a file truncated to zero when it is closed): the write says what fails */
          }
        }
        let off = f[k + 4]!;
        const end = off + f[k + 5]!;
        while (off < end) off += fs.writeSync(fd, b, off, end - off, off - f[k + 4]!);
        if (f[k + 12]! >= 0) fs.ftruncateSync(fd, f[k + 12]!);
        if (f[k + 8]! >= 0) fs.fchownSync(fd, f[k + 8]!, f[k + 9]!);
        if (f[k + 7]! >= 0) fs.fchmodSync(fd, f[k + 7]!);
        // node:fs sets the current time for negative seconds: a time before 1970 goes as a Date, to the millisecond
        // rounded down (as file-extractor.ts T).
        // After 1970: seconds half a microsecond past the time's microsecond, so that libuv's truncation of the
        // double lands on that microsecond (the exact time's double can fall just below it).
        const when = f[k + 10]! < 0 ? new Date(f[k + 10]! * 1000 + Math.floor(f[k + 11]! / 1e6)) : f[k + 10]! + (Math.floor(f[k + 11]! / 1000) + 0.5) / 1e6;
        fs.futimesSync(fd, when, when);
        const c = fd;
        fd = -1;
        fs.closeSync(c);
        if (made === tmp) fs.renameSync(tmp, dst);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (fd >= 0) {
          try {
            fs.closeSync(fd);
          } catch {
            /* the write's error matters more */
          }
        }
        if (made) {
          try {
            // Created by this call (O_EXCL), so nothing else is removed: no partial file stays, under either name.
            fs.unlinkSync(made);
          } catch {
            /* gone */
          }
        }
        error = { index: i, message: String(err.message), ...(err.code ? { code: err.code } : {}) };
        break;
      }
    }
    transfer(t.buf);
    return error ? { done: i, buf: t.buf, error } : { done: i, buf: t.buf };
  };
}

export const fileWriterBody = workerBody({
  name: 'file writing',
  modules: { fs: 'node:fs', util: 'node:util' },
  helpers: { loadNativeFs },
  setup: setupBatchWriter,
});

/** The writer threads' init in this process (the native module's path where it is; FERRY_NATIVE=0: none). */
function writerInit(): WriterInit {
  const native = nativeFsPath();
  return native === null ? { flags: CREATE_FLAGS } : { flags: CREATE_FLAGS, native };
}

/**
 * Writer threads of this receiver process, shared by its file sessions.
 * Started on demand (a delta pass that creates no new directory starts
 * none); idle ones do not keep the process alive. If workers cannot start,
 * batches are written on the calling thread by the same body.
 *
 * One thread (measured 2026-12-06, /usr tree, alternating rounds): with two,
 * consecutive batches land in the same directory and the threads wait on its
 * lock (open 2.7 s and rename 2.4 s of profiled time between them, against
 * 2.2 s and 1.3 s on the main thread before), wall times were the same as
 * with one (within the rounds' spread), and each thread costs 10–20 MB of RSS.
 */
let shared: WorkerPool<WriterInit, WriteTask, WriteResult> | undefined;
export const WRITER_THREADS = 1;
function sharedPool(): WorkerPool<WriterInit, WriteTask, WriteResult> {
  shared ??= new WorkerPool(fileWriterBody, writerInit(), { size: WRITER_THREADS });
  return shared;
}

/** What a file needs besides its bytes; -1 leaves a step out. */
export interface WriteMeta {
  createMode: number;
  chmod: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  truncate: number;
}

interface Batch {
  seq: number;
  buf: ArrayBuffer;
  bytes: Buffer;
  used: number;
  files: number[];
  /** The stream path of each file, for errors. */
  rels: Buffer[];
  /** The same paths as keys of BatchWriter.names. */
  keys: string[];
  /** Files whose body is complete (the last one may still be arriving). */
  complete: number;
}

/** A time (ns since 1970) as a batch carries it: whole seconds rounded down and the nanoseconds past them (exact, also before 1970). */
export function mtimeParts(ns: bigint): [sec: number, nsec: number] {
  const sec = ns >= 0n || ns % 1_000_000_000n === 0n ? ns / 1_000_000_000n : ns / 1_000_000_000n - 1n;
  return [Number(sec), Number(ns - sec * 1_000_000_000n)];
}

export class BatchWriter {
  private readonly pool: WorkerPool<WriterInit, WriteTask, WriteResult>;
  private cur: Batch | null = null;
  private seq = 0;
  /** Every batch with a smaller seq is in place. */
  private inPlaceBelow = 0;
  private readonly finished = new Set<number>();
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly after: { seq: number; fn: () => void }[] = [];
  private readonly free: ArrayBuffer[] = [];
  private error: Error | null = null;
  /** Stream paths handed over and not yet in place (latin1 keys, with a count for a path named twice). */
  private readonly names = new Map<string, number>();
  /** Truncate each new file with a body to 0 once created, for the batches handed over from now on (file-extractor.ts, BTRFS_FLUSH_FREE_BYTES). */
  flushOnClose = false;

  /**
   * `wrap` turns a failed write into the error the extractor reports (the entry's path, the target).
   * `threads` 0 writes on the calling thread (tests); default: the process's shared pool.
   */
  constructor(
    private readonly wrap: (rel: Buffer, e: Error) => Error,
    threads?: number,
  ) {
    this.pool = threads === undefined ? sharedPool() : new WorkerPool(fileWriterBody, writerInit(), { size: threads });
  }

  /** Whether something handed over is not in place yet. */
  get pending(): boolean {
    return this.cur !== null || this.inFlight.size > 0;
  }

  /** Whether the file at stream path `rel` was handed over and is not in place yet. */
  holds(rel: Buffer): boolean {
    return this.names.size > 0 && this.names.has(rel.toString('latin1'));
  }

  /** Throws the first failed write, if any. */
  check(): void {
    if (this.error) throw this.error;
  }

  /** Whether a file with this body and these paths can be batched. */
  fits(size: number, tmp: Buffer, dst: Buffer): boolean {
    return size <= SMALL_FILE_BYTES && size + tmp.length + dst.length <= BATCH_BYTES;
  }

  /**
   * Starts a file (its body follows through `data`, then `end`). Returns a promise, to be awaited before its body,
   * only when IN_FLIGHT batches are out; else undefined, the file begun at once (no promise per file: an await per
   * entry was part of the receiver's per-entry cost, docs/file-replication.md "Less CPU per entry on both ends").
   */
  begin(rel: Buffer, tmp: Buffer, dst: Buffer, size: number, m: WriteMeta): Promise<void> | undefined {
    this.check();
    const need = size + tmp.length + dst.length;
    if (this.cur && (this.cur.used + need > BATCH_BYTES || this.cur.rels.length >= BATCH_FILES)) this.dispatch();
    if (this.inFlight.size >= IN_FLIGHT) return this.beginLater(rel, tmp, dst, m);
    this.check();
    this.add(rel, tmp, dst, m);
    return undefined;
  }

  private async beginLater(rel: Buffer, tmp: Buffer, dst: Buffer, m: WriteMeta): Promise<void> {
    while (this.inFlight.size >= IN_FLIGHT) await Promise.race(this.inFlight.values());
    this.check();
    this.add(rel, tmp, dst, m);
  }

  private add(rel: Buffer, tmp: Buffer, dst: Buffer, m: WriteMeta): void {
    const b = (this.cur ??= this.newBatch());
    const tmpOff = b.used;
    b.used += tmp.copy(b.bytes, b.used);
    const dstOff = b.used;
    b.used += dst.copy(b.bytes, b.used);
    const [sec, nsec] = mtimeParts(m.mtimeNs);
    b.files.push(tmpOff, tmp.length, dstOff, dst.length, b.used, 0, m.createMode, m.chmod, m.uid, m.gid, sec, nsec, m.truncate);
    b.rels.push(rel);
    const k = rel.toString('latin1');
    b.keys.push(k);
    this.names.set(k, (this.names.get(k) ?? 0) + 1);
  }

  /** The batch's paths are in place (or never will be: a failed or dropped batch). */
  private forget(keys: string[]): void {
    for (const k of keys) {
      const n = this.names.get(k) ?? 0;
      if (n > 1) this.names.set(k, n - 1);
      else this.names.delete(k);
    }
  }

  /** Body bytes of the file begun last (copied: the caller's buffer is reused). */
  data(chunk: Buffer): void {
    const b = this.cur!;
    b.used += chunk.copy(b.bytes, b.used);
    b.files[b.files.length - FIELDS + 5]! += chunk.length;
  }

  /** The file begun last is complete. */
  end(): void {
    const b = this.cur!;
    b.complete = b.rels.length;
    if (b.rels.length >= BATCH_FILES) this.dispatch();
    else this.flushWhenIdle();
  }

  /** Hands over the complete files now (without waiting): before the extractor's own thread writes a large file. */
  flush(): void {
    if (this.cur && this.cur.complete === this.cur.rels.length && this.inFlight.size < IN_FLIGHT) this.dispatch();
  }

  /**
   * A partial batch goes out once the extractor's thread has nothing else to do (it waits for the next frame)
   * and the writer has nothing either: otherwise a slow stream would hold written-to-be files, and the resume
   * point behind them, in memory. While a batch is being written the next one keeps filling; it goes out when
   * that batch is in place (`settled`), when full, or before a large file. (Measured 2026-12-06, /usr tree: handing over
   * whatever was complete at each pause of the main thread made 969 batches of about 38 files; this way 457.)
   */
  private flushWhenIdle(): void {
    if (this.idleFlush) return;
    this.idleFlush = true;
    setImmediate(() => {
      this.idleFlush = false;
      if (this.inFlight.size === 0) this.flush();
    });
  }
  private idleFlush = false;

  /**
   * Runs `fn` once everything handed over so far is in place: at once when
   * nothing is pending, else after the batches before it (in the order the
   * calls were made). Never runs after a failed write.
   */
  afterWritten(fn: () => void): void {
    if (!this.pending) return fn();
    this.after.push({ seq: this.cur ? this.cur.seq : this.seq - 1, fn });
  }

  /** Hands over the complete files and waits until all are in place; throws the first failed write. */
  async drain(): Promise<void> {
    if (this.cur) this.dispatch();
    while (this.inFlight.size > 0) await Promise.race(this.inFlight.values());
    this.check();
  }

  /**
   * After an error elsewhere: hands over the complete files (as the extractor's own thread would have written them
   * before it met the error), waits for every batch out, and takes no more. Nothing is written after it returns.
   */
  async abandon(): Promise<void> {
    if (this.cur) this.dispatch();
    while (this.inFlight.size > 0) await Promise.race(this.inFlight.values());
    this.error ??= new Error('the extraction ended');
  }

  private newBatch(): Batch {
    const buf = this.free.pop() ?? new ArrayBuffer(BATCH_BYTES);
    return { seq: this.seq++, buf, bytes: Buffer.from(buf), used: 0, files: [], rels: [], keys: [], complete: 0 };
  }

  private release(buf: ArrayBuffer): void {
    // Kept for the next batches (fresh buffers cost page faults: ~7 % of the receiver's CPU, 2026-12-05); at most IN_FLIGHT + 1.
    if (buf.byteLength === BATCH_BYTES && this.free.length <= IN_FLIGHT) this.free.push(buf);
  }

  private dispatch(): void {
    const b = this.cur!;
    this.cur = null;
    // A file whose body is still arriving (only after an error ends the stream) is not written.
    const files = Float64Array.from(b.complete === b.rels.length ? b.files : b.files.slice(0, b.complete * FIELDS));
    const rels = b.rels.slice(0, b.complete);
    if (this.error || rels.length === 0) {
      this.forget(b.keys);
      this.release(b.buf);
      this.settled(b.seq);
      return;
    }
    const p = this.pool.run({ buf: b.buf, files, flushOnClose: this.flushOnClose }, [b.buf, files.buffer]).then(
      (r) => {
        this.release(r.buf);
        if (r.error) {
          const e = Object.assign(new Error(r.error.message), r.error.code ? { code: r.error.code } : {});
          this.fail(this.wrap(rels[r.error.index]!, e));
        }
      },
      (e: Error) => this.fail(this.wrap(rels[0]!, e)),
    ).finally(() => {
      this.forget(b.keys);
      this.inFlight.delete(b.seq);
      this.settled(b.seq);
    });
    this.inFlight.set(b.seq, p);
  }

  private fail(e: Error): void {
    this.error ??= e;
    this.after.length = 0;
  }

  private settled(seq: number): void {
    this.finished.add(seq);
    while (this.finished.delete(this.inPlaceBelow)) this.inPlaceBelow++;
    if (this.error) return;
    let i = 0;
    try {
      while (i < this.after.length && this.after[i]!.seq < this.inPlaceBelow) this.after[i++]!.fn();
    } catch (e) {
      this.fail(e as Error);
    }
    this.after.splice(0, i);
    // The writer has nothing left: hand over what is complete (see flushWhenIdle).
    if (this.inFlight.size === 0) this.flush();
  }
}
