// The tar producer: turns a walk (diffed against the last pass's manifest)
// into the pax tar byte stream the receiver extracts, and writes the new
// manifest beside it. Full pass: every entry. Delta pass: new and changed
// entries, deletions, and for large changed files only the pieces that
// differ from the receiver's copy. Sparse files travel as data ranges, hard
// links as links to the first path seen, files that change while read are
// marked so the next pass sends them again, vanished files are skipped
// with a warning (and deleted on the receiver). Knows nothing of sockets.

import { closeSync, constants, fstatSync, openSync, statSync, type BigIntStats } from 'node:fs';
import type { Logger } from '../../platform/log.js';
import type { Entry } from './entry.js';
import { major, minor } from './entry.js';
import { ManifestWriter, readManifestLines } from './manifest.js';
import { Delta, type DeltaItem } from './delta.js';
import { changedRanges, formatRanges, LARGE_FILE, pieceHashes, readFull, sparseRanges, type Range } from '../../protocol/file-pieces.js';
import { extentsIfSparse } from '../../platform/file-extents.js';
import { absPath, isUnder, showPath } from '../../protocol/paths.js';
import { bodyPadding, encodeHeader, ZERO_BLOCKS, type TarHeader, type TarType } from '../../protocol/tar-format.js';
import { DATA_RUN_BYTES } from '../../protocol/sizes.js';
import { Walker, type WalkOptions } from './walker.js';
import { SmallFileReader, type SmallRead } from './small-file-reader.js';
import { loadXattrs, XattrPathError, type XattrOps } from '../../platform/xattrs.js';
import type { NativeXattrList } from '../../platform/native-fs.js';

/** Asks the receiver for the piece hashes of its copy of a file (null: it has none). */
export type RemoteHashes = (path: Buffer) => Promise<Buffer | null>;

export interface ProduceOptions {
  root: string;
  /** The manifest of the last committed pass; the new one is written to `<manifest>.tmp`. */
  manifest: string;
  /** What the receiver holds, as manifest lines in walk order (default: the manifest at `manifest`; nothing when `full`). */
  basis?: Iterator<string>;
  walk?: WalkOptions;
  /** A walk of `root` already started (then `walk` is not used); default: one is started here with `walk`. */
  walker?: Walker;
  log?: Logger;
  /** Ignore the old manifest and send everything. */
  full?: boolean;
  remoteHashes?: RemoteHashes;
  largeFileThreshold?: number;
  /** Copy xattrs/ACLs (default true). */
  xattrs?: boolean;
  /** Size of the slices yielded (default 1 MiB, one FILE_DATA frame). */
  sliceBytes?: number;
  /**
   * Worker threads reading small files ahead (default: the reader's own; 0 reads them on libuv's thread
   * pool), or threads shared with the rest of the pass (pass-workers.ts).
   */
  smallFileThreads?: ConstructorParameters<typeof SmallFileReader>[0];
  /** Test-only fault injection; never set in production. */
  internals?: { beforeRead?: (path: Buffer) => void };
}

export interface ProduceStats {
  entries: number;
  sent: number;
  unchanged: number;
  deleted: number;
  totalBytes: number;
  bytesRead: number;
  bytesSkippedUnchanged: number;
  bytesSkippedZero: number;
  changedWhileRead: number;
  vanished: number;
  streamBytes: number;
}

const O_NOFOLLOW = constants.O_NOFOLLOW;
/** Files up to this size are read ahead, whole. */
const SMALL_FILE = 256 * 1024;
/**
 * The read-ahead: entries at most, and bytes of small files at most, for the
 * whole process; each stream reading ahead gets an equal share, never less
 * than READ_AHEAD_MIN_ITEMS and READ_AHEAD_MIN_BYTES.
 * History: was 256 and 8 MiB a stream; measured (issue 14, /usr full copy,
 * with ENCODE_AHEAD 2 in stream-sender.ts, alternating runs): 64 and 2 MiB
 * took agent peak RSS from 234 / 259 MB to 219 / 239 MB, wall within the
 * noise (8.7 s against 8.3 s), since what is read ahead lives long enough to
 * reach V8's old generation and is freed only by its full collections.
 * Why 128 for a stream alone (docs/file-replication.md, "A read-ahead shared
 * by the passes"): 64 entries are two of the small-file reader's batches of
 * 32, so at most two batches were read at once, not the three its native
 * reader allows (small-file-reader.ts NATIVE_BATCHES); 128 and 4 MiB took the
 * cold /usr full copy's wall median from 5.54 to 5.28 s (12 alternating
 * pairs). Why shared: 128 entries a stream took the whole-server agent's peak
 * RSS from 161-183 MB to 197-209 MB (its V8 heap from 28-29 to 51 MB; 4 MiB
 * of bytes alone did nothing), with two or three passes at once; their reads
 * already overlap each other, so each of them keeps the 64 and 2 MiB it had.
 */
const READ_AHEAD_ITEMS = 128;
const READ_AHEAD_BYTES = 4 * 1024 * 1024;
const READ_AHEAD_MIN_ITEMS = 64;
const READ_AHEAD_MIN_BYTES = 2 * 1024 * 1024;
/** Streams reading ahead in this process now (TarProducer.readAhead). */
let readingAhead = 0;

/**
 * Slices handed back by the consumer (recycle) kept for reuse, at most: the
 * frames being compressed ahead and those the socket still holds.
 */
const SPARE_SLICES = 4;

/**
 * A delta's stream bytes wait at most about this long in a partial slice
 * while the walk goes on through unchanged entries; then the slice leaves
 * as it is. A delta's few changed files otherwise reached the receiver in
 * one or two slices at the end of the walk, and the agent sat idle while
 * the receiver replaced them (measured 2026-12-06, usr tree, 768 files
 * changed: the agent's last 0.05–0.1 s warm and 0.2–0.25 s cold were that
 * wait; see docs/file-replication.md, "The delta's replacements"). Sent
 * early, they are written while the agent still walks. Only unchanged
 * entries look at the clock: a full pass fills its slices as before.
 */
export const DELTA_HOLD_MS = 50;

/** A delta item on its way to the stream, with the read of its bytes already started when it is a small file. */
type Ahead = DeltaItem & { pre?: Promise<SmallRead> };

const TAR_TYPE: Record<Entry['type'], TarType> = { f: 'file', d: 'dir', l: 'symlink', p: 'fifo', c: 'char', b: 'block' };

export class TarProducer {
  readonly stats: ProduceStats = {
    entries: 0, sent: 0, unchanged: 0, deleted: 0, totalBytes: 0, bytesRead: 0,
    bytesSkippedUnchanged: 0, bytesSkippedZero: 0, changedWhileRead: 0, vanished: 0, streamBytes: 0,
  };
  private readonly out: ManifestWriter;
  private readonly rootBuf: Buffer;
  /** The root's device (statSync, followed as the walk follows it): directories on it have their xattrs read beneath it. */
  private rootDev: bigint | undefined;
  private readonly slice: number;
  private buf: Buffer;
  private used = 0;
  /** When the walk first passed unchanged entries with bytes waiting in the slice (0: not since the last flush). */
  private heldSince = 0;
  /** Slices yielded and not yet recycled (only those may come back), and the ones back for reuse. */
  private readonly lent = new WeakSet<ArrayBuffer>();
  private readonly spareSlices: Buffer[] = [];
  private readonly links = new Map<string, Buffer>();
  /**
   * Slices complete and not yet yielded, in stream order. Entries are written by plain methods, which leave
   * full slices here; the stream yields them after each entry (a large file's, after each read). Measured
   * (issue 14, /usr full copy, docs/file-replication.md "A smaller stream to compile"): with a `yield*` of a
   * generator at every place a slice could fill, `stream` was 6,789 bytes of bytecode that TurboFan compiled
   * five times a pass (each entry kind's first appearance after an optimization deoptimized it), 75–220 ms
   * each; now 1,609 bytes, compiled four times, 18–59 ms each.
   */
  private readonly ready: Buffer[] = [];
  /** Below a deleted directory, deletions are implied (its delete header removes them all). */
  private deletedDir: Buffer | null = null;
  private readonly ioBuf = Buffer.allocUnsafe(1 << 20);
  /** Every entry's header is encoded here and copied into the stream's slice at once (emit). */
  private readonly headerScratch = Buffer.allocUnsafeSlow(64 * 1024);
  private reader: SmallFileReader | null = null;
  /** The walk (closed with the reader: its workers stop with the stream). */
  private walker: Walker | null;

  constructor(private readonly o: ProduceOptions) {
    this.rootBuf = Buffer.from(o.root);
    this.slice = o.sliceBytes ?? DATA_RUN_BYTES;
    this.buf = this.newSlice();
    this.out = new ManifestWriter(o.manifest);
    this.walker = o.walker ?? null;
  }

  /** Renames the new manifest into place: call once the receiver has committed the pass. */
  commitManifest(): void {
    this.out.commit();
  }

  abandonManifest(): void {
    this.out.abandon();
    void this.closeWorkers();
  }

  /** Keeps what was written so far as `partialPath` (for resuming after a cut). */
  keepPartialManifest(partialPath: string): void {
    this.out.keepAs(partialPath);
    void this.closeWorkers();
  }

  /**
   * Copies b into the current slice when it fits there, without the generator object a `yield* emit` costs
   * (several per small file); false: emit it.
   */
  private put(b: Buffer): boolean {
    if (this.used + b.length > this.slice || b.length >= this.slice) return false;
    this.stats.streamBytes += b.length;
    // TypedArray set, not Buffer copy: the same memcpy without copy()'s argument checks (three calls per small file).
    this.buf.set(b, this.used);
    this.used += b.length;
    return true;
  }

  /**
   * Encodes an entry's header straight into the free end of the current slice (null: done), or, when it does
   * not fit there, returns it for emit: no copy out of a scratch buffer per entry.
   */
  private putHeader(h: TarHeader): Buffer | null {
    const head = encodeHeader(h, this.buf.subarray(this.used));
    if (head.buffer !== this.buf.buffer) return head;
    this.used += head.length;
    this.stats.streamBytes += head.length;
    return null;
  }

  /** Appends b to the stream: into the current slice, or (as large as a slice) as a slice of its own. */
  private emit(b: Buffer): void {
    this.stats.streamBytes += b.length;
    if (b.length >= this.slice) {
      this.flush();
      // A header as large as a slice (tiny slices, long pax records) leaves as a copy: its scratch is reused.
      this.ready.push(b.buffer === this.headerScratch.buffer ? Buffer.from(b) : b);
      return;
    }
    if (this.used + b.length > this.slice) this.flush();
    this.buf.set(b, this.used);
    this.used += b.length;
  }

  /** Ends the current slice (if it holds anything): it waits in `ready` for the stream to yield it. */
  private flush(): void {
    this.heldSince = 0;
    if (this.used === 0) return;
    this.ready.push(this.buf.subarray(0, this.used));
    this.lent.add(this.buf.buffer as ArrayBuffer);
    this.buf = this.spareSlices.pop() ?? this.newSlice();
    this.used = 0;
  }

  /** A slice of its own memory (never a view of Node's shared pool, which small sizes would get). */
  private newSlice(): Buffer {
    return Buffer.allocUnsafeSlow(this.slice);
  }

  /**
   * Takes back a slice this stream yielded, once its consumer no longer needs its bytes (the stream
   * sender: compressed, or written by the socket); the stream fills it again instead of a fresh one.
   * Measured: docs/file-replication.md, "Buffers reused on a full pass". Anything else, or a second
   * recycle of the same slice, is ignored; a slice never recycled is left to the garbage collector.
   */
  recycle(slice: Buffer): void {
    const ab = slice.buffer as ArrayBuffer;
    if (!this.lent.has(ab)) return;
    this.lent.delete(ab);
    if (this.spareSlices.length < SPARE_SLICES) this.spareSlices.push(Buffer.from(ab, 0, this.slice));
  }

  /** The tar stream, in slices of about `sliceBytes`. */
  async *stream(): AsyncGenerator<Buffer> {
    const log = this.o.log;
    if (this.o.xattrs !== false) this.xops = await loadXattrs();
    const old = this.o.full ? ([] as string[])[Symbol.iterator]() : (this.o.basis ?? readManifestLines(this.o.manifest));
    this.walker ??= new Walker(this.o.root, { ...this.o.walk, ...(log ? { log } : {}) });
    const ready = this.ready;
    for await (const ahead of this.readAhead(new Delta(old).batches(this.walker))) for (const item of ahead) {
      if (item.kind === 'same') this.same(item);
      else if (item.kind === 'deleted') this.deleted(item.old);
      else {
        const e = item.cur;
        const linkTo = this.linkTarget(e);
        if (e.type === 'f' && !linkTo) {
          this.entryBegins(item);
          let r: 'ok' | 'changed' | 'vanished';
          if (item.pre) r = this.smallFile(e, await item.pre);
          else r = yield* this.file(e, item.kind === 'changed' && item.old.type === 'f');
          this.fileSent(item, r);
        } else this.other(item, linkTo);
      }
      while (ready.length > 0) yield ready.shift()!;
    }
    this.emit(ZERO_BLOCKS);
    this.flush();
    while (ready.length > 0) yield ready.shift()!;
    await this.closeWorkers();
  }

  /** Unchanged entries: into the new manifest as they were. */
  private same(item: Extract<DeltaItem, { kind: 'same' }>): void {
    this.out.addOrdered(item.lines);
    for (const e of item.links) this.noteLink(e);
    this.stats.entries += item.lines.length;
    this.stats.unchanged += item.lines.length;
    this.stats.totalBytes += item.bytes;
    this.stats.bytesSkippedUnchanged += item.bytes;
    if (this.used > 0) {
      // Bytes wait in the slice while the walk passes unchanged entries: send them after DELTA_HOLD_MS.
      const now = performance.now();
      if (this.heldSince === 0) this.heldSince = now;
      else if (now - this.heldSince >= DELTA_HOLD_MS) this.flush();
    }
  }

  private deleted(old: Entry): void {
    if (this.deletedDir && isUnder(old.path, this.deletedDir)) return;
    if (old.type === 'd') this.deletedDir = old.path;
    this.stats.deleted++;
    this.emit(deleteHeader(old.path));
  }

  /** A new or changed entry is counted. */
  private entryBegins(item: Extract<DeltaItem, { kind: 'new' | 'changed' }>): void {
    const e = item.cur;
    this.stats.entries++;
    this.stats.totalBytes += e.size;
    if (item.kind === 'changed' && item.old.type === 'd' && e.type !== 'd') this.deletedDir = e.path;
  }

  /** After a regular file's bytes (or none, 'vanished'): its manifest line. */
  private fileSent(item: Extract<DeltaItem, { kind: 'new' | 'changed' }>, r: 'ok' | 'changed' | 'vanished'): void {
    const e = item.cur;
    if (r === 'vanished') {
      this.stats.vanished++;
      this.o.log?.warn({ path: showPath(e.path) }, 'file vanished before it could be read; skipped');
      if (item.kind === 'changed') this.emit(deleteHeader(e.path));
      return;
    }
    this.noteLink(e);
    if (r === 'changed') this.out.add({ ...e, mtimeNs: -1n });
    else this.out.addLine(item.line);
    this.stats.sent++;
  }

  /**
   * A new or changed entry other than a regular file's first link: a hard link (`linkTo`, the path its
   * first link went under), directory, symlink, FIFO or device.
   */
  private other(item: Extract<DeltaItem, { kind: 'new' | 'changed' }>, linkTo: Buffer | undefined): void {
    this.entryBegins(item);
    const e = item.cur;
    if (linkTo) {
      this.emit(encodeHeader({ ...base(e), type: 'link', size: 0, linkpath: linkTo }, this.headerScratch));
      this.stats.sent++;
      this.out.addLine(item.line);
      return;
    }
    const h: TarHeader = { ...base(e), type: TAR_TYPE[e.type], size: 0 };
    if (e.type === 'l') h.linkpath = e.target!;
    if (e.type === 'c' || e.type === 'b') {
      h.devmajor = major(e.rdev);
      h.devminor = minor(e.rdev);
    }
    const x = e.type === 'l' ? undefined : this.beneathXattrs(e);
    if (x === 'vanished') {
      // Gone since the walk (a FIFO or a device): as a file that vanishes before its read.
      this.stats.vanished++;
      this.o.log?.warn({ path: showPath(e.path) }, 'entry vanished before it could be sent; skipped');
      if (item.kind === 'changed') this.emit(deleteHeader(e.path));
      return;
    }
    if (x === 'replaced') {
      // Not what the walk listed any more (a symlink put in its place or above it), or gone: nothing of it
      // goes, the receiver keeps what it has, and the manifest marks it changed so that the next pass sends it
      // (or, gone, deletes it).
      this.stats.vanished++;
      this.o.log?.warn(
        { path: showPath(e.path) },
        e.type === 'd' ? 'directory replaced since the walk listed it; sent on the next pass' : 'directory above it replaced since the walk listed it; sent on the next pass',
      );
      this.out.add({ ...e, mtimeNs: -1n });
      return;
    }
    if (x) h.xattrs = x;
    const head = this.putHeader(h);
    if (head) this.emit(head);
    this.noteLink(e);
    this.out.addLine(item.line);
    this.stats.sent++;
  }

  /** Stops the walk's and the small-file reader's worker threads (the stream is over or abandoned). */
  private async closeWorkers(): Promise<void> {
    this.releaseAheadShare();
    const w = this.walker;
    this.walker = null;
    await w?.close();
    if (!this.reader) return;
    this.stats.bytesRead += this.reader.bytesRead;
    const r = this.reader;
    this.reader = null;
    await r.close();
  }

  /** This stream counts in readingAhead (from its read-ahead's start to its end, or to closeWorkers). */
  private aheadShare = false;

  /**
   * Gives this stream's share of the read-ahead back, once: when its read-ahead ends, or when the pass is
   * over or abandoned (closeWorkers), so that a stream left suspended without return() does not hold it.
   */
  private releaseAheadShare(): void {
    if (!this.aheadShare) return;
    this.aheadShare = false;
    readingAhead--;
  }

  /**
   * Runs the diff a little ahead of the stream and starts reading the small
   * files it will need (asynchronously, several at once), so cold reads of
   * many small files overlap instead of waiting on the disk one by one.
   * Bounded by this stream's share of READ_AHEAD_ITEMS entries and READ_AHEAD_BYTES of data.
   * Takes the delta a stretch at a time and hands items on in arrays (one
   * await per burst instead of an async generator step per entry).
   */
  private async *readAhead(batches: AsyncIterator<DeltaItem[]>): AsyncGenerator<Ahead[]> {
    const queue: { item: Ahead; bytes: number }[] = [];
    let bytes = 0;
    let done = false;
    let batch: DeltaItem[] = [];
    let at = 0;
    readingAhead++;
    this.aheadShare = true;
    try {
      for (;;) {
        // This stream's share of the process's read-ahead, as of this refill (another pass may start or end).
        const maxItems = Math.max(READ_AHEAD_MIN_ITEMS, Math.floor(READ_AHEAD_ITEMS / readingAhead));
        const maxBytes = Math.max(READ_AHEAD_MIN_BYTES, Math.floor(READ_AHEAD_BYTES / readingAhead));
        // Refilled in bursts, from half empty, so that the reads it starts go out in full batches of the
        // small-file reader (one at a time, a batch was cut whenever the stream waited on a frame).
        while (!done && queue.length < maxItems && bytes < maxBytes) {
          if (at === batch.length) {
            const n = await batches.next();
            if (n.done) {
              done = true;
              break;
            }
            batch = n.value;
            at = 0;
            continue;
          }
          const it: Ahead = batch[at++]!;
          if ((it.kind === 'new' || it.kind === 'changed') && it.cur.type === 'f' && it.cur.size <= SMALL_FILE && it.cur.allocated >= it.cur.size && !this.linkTarget(it.cur)) {
            const pre = this.readSmall(it.cur, it.line);
            pre.catch(() => {}); // awaited when its turn comes; a skipped one must not go unhandled
            it.pre = pre; // the delta's item is this stream's alone: no copy of it
            queue.push({ item: it, bytes: it.cur.size });
            bytes += it.cur.size;
          } else queue.push({ item: it, bytes: 0 });
        }
        if (queue.length === 0) return;
        // Everything above half of the bounds goes out at once (all of it at the end), then the queue is refilled.
        const out: Ahead[] = [];
        do {
          const head = queue.shift()!;
          bytes -= head.bytes;
          out.push(head.item);
        } while (queue.length > 0 && (done || queue.length > maxItems / 2 || bytes > maxBytes / 2));
        yield out;
      }
    } finally {
      this.releaseAheadShare();
    }
  }

  /** Reads a small file ahead; judged on the reader's thread against the walk's line (inode, size, times). */
  private readSmall(e: Entry, line: string): Promise<SmallRead> {
    this.o.internals?.beforeRead?.(e.path);
    // Each file's xattrs come with its bytes where the reader can (on the fd it read through), off this thread.
    this.reader ??= new SmallFileReader(this.o.smallFileThreads, this.xops?.xattrsFromList !== undefined);
    return this.reader.read(absPath(this.rootBuf, e.path), e.size, line);
  }

  /** Sends a small file whose bytes were read ahead. */
  private smallFile(e: Entry, r: SmallRead): 'ok' | 'changed' | 'vanished' {
    if (r === 'vanished') return 'vanished';
    const h: TarHeader = { path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, type: 'file', size: e.size };
    const x = this.xattrs(e, r.xattrs);
    if (x) h.xattrs = x;
    const head = this.putHeader(h);
    if (head) this.emit(head);
    if (!this.put(r.data)) this.emit(r.data);
    // Copied into the slice (a small file is always shorter than one): its batch's buffer may go back.
    if (r.data.length < this.slice) r.release?.();
    if (r.data.length < e.size) this.emit(Buffer.alloc(e.size - r.data.length)); // shrank: pad, resend next pass
    const pad = bodyPadding(e.size);
    if (!this.put(pad)) this.emit(pad);
    if (r.changed) {
      this.stats.changedWhileRead++;
      this.o.log?.warn({ path: showPath(e.path) }, 'file changed while being read; it will be sent again on the next pass');
      return 'changed';
    }
    return 'ok';
  }

  private noteLink(e: Entry): void {
    if (e.type !== 'd' && e.nlink > 1) {
      const k = `${e.dev}:${e.ino}`;
      if (!this.links.has(k)) this.links.set(k, e.path);
    }
  }

  private linkTarget(e: Entry): Buffer | undefined {
    if (e.type === 'd' || e.nlink < 2) return undefined;
    return this.links.get(`${e.dev}:${e.ino}`);
  }

  private xops: XattrOps | null = null;

  /**
   * The xattrs of a directory, FIFO or device for its header. Below the root and on its file system, read with no
   * symlink below the root followed: a directory on an fd opened so (readXattrsDirBeneath), anything else by its
   * name relative to its directory opened so (readXattrsBeneath), so that a directory swapped for a symlink above
   * it since the walk does not give another entry's xattrs under this one's owner. 'replaced' when no directory is
   * there any more (ELOOP, ENOTDIR, ENOENT); 'vanished' when a FIFO or device itself is gone. A mount point
   * (another device: an automount is not triggered by it), the root and the entries directly in it are read by
   * path, as is everything without the native module.
   */
  private beneathXattrs(e: Entry): Map<string, Buffer> | undefined | 'replaced' | 'vanished' {
    const read = e.type === 'd' ? this.xops?.readXattrsDirBeneath : this.xops?.readXattrsBeneath;
    if (!read || e.path.length === 0) return this.xattrs(e);
    this.rootDev ??= statSync(this.rootBuf, { bigint: true }).dev;
    if (e.dev !== this.rootDev) return this.xattrs(e);
    const abs = absPath(this.rootBuf, e.path);
    try {
      const x = read(abs, abs.length - e.path.length);
      if (x === null) return 'vanished';
      if (x === undefined) return this.xattrs(e);
      return x.size > 0 ? x : undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT') return 'replaced';
      const why = err instanceof XattrPathError ? err.message : (err as Error).message;
      this.o.log?.warn({ path: showPath(e.path) }, `xattrs not copied: ${why}`);
      return undefined;
    }
  }

  /**
   * An entry's xattrs for its header: `listed` when the reader read them with the bytes (null: none), else read
   * on `fd` when the platform can, else by path.
   */
  private xattrs(e: Entry, listed?: NativeXattrList | null, fd?: number): Map<string, Buffer> | undefined {
    const xops = this.xops;
    if (!xops || e.type === 'l') return undefined;
    try {
      const x =
        (listed !== undefined ? xops.xattrsFromList?.(listed) : undefined) ??
        (fd !== undefined ? xops.readXattrsFd?.(fd) : undefined) ??
        xops.readXattrs(absPath(this.rootBuf, e.path));
      return x.size > 0 ? x : undefined;
    } catch (err) {
      const why = err instanceof XattrPathError ? err.message : (err as Error).message;
      this.o.log?.warn({ path: showPath(e.path) }, `xattrs not copied: ${why}`);
      return undefined;
    }
  }

  /** Sends one regular file: whole, as data ranges (sparse), or as a patch (large, changed). */
  private async *file(e: Entry, receiverHasIt: boolean): AsyncGenerator<Buffer, 'ok' | 'changed' | 'vanished'> {
    const abs = absPath(this.rootBuf, e.path);
    this.o.internals?.beforeRead?.(e.path);
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO put in the file's place opens at once (and is refused below) instead of hanging here.
      fd = openSync(abs, constants.O_RDONLY | O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ELOOP') return 'vanished';
      throw err;
    }
    try {
      const before = fstatSync(fd, { bigint: true });
      // Another file than the walk's (device and inode, as for small files: judgeRead) is not sent as it.
      if (before.ino !== e.ino || before.dev !== e.dev || !before.isFile()) return 'vanished';
      const size = Number(before.size);
      const h: TarHeader = { ...base(e), type: 'file', size };
      const x = this.xattrs(e, undefined, fd);
      if (x) h.xattrs = x;
      let ranges: Range[] | null = null;
      const threshold = this.o.largeFileThreshold ?? LARGE_FILE;
      if (receiverHasIt && size > threshold && this.o.remoteHashes) {
        const remote = await this.o.remoteHashes(e.path);
        if (remote) {
          // A sparse file's holes hash as zeros without being read (its extent map, as for a full send).
          const local = await pieceHashes(fd, size, await extentsIfSparse(fd, size, e.allocated));
          ranges = changedRanges(local, remote, size);
          this.stats.bytesRead += size;
          h.ferry = { op: 'patch', map: formatRanges(ranges), size: String(size) };
          this.stats.bytesSkippedUnchanged += size - sum(ranges);
        }
      }
      if (!ranges && size > 0 && e.allocated < size) {
        ranges = await sparseRanges(fd, size, e.allocated);
        if (ranges) {
          this.stats.bytesRead += size;
          h.ferry = { map: formatRanges(ranges), size: String(size) };
          this.stats.bytesSkippedZero += size - sum(ranges);
        }
      }
      if (ranges) h.size = sum(ranges);
      this.emit(encodeHeader(h, this.headerScratch));
      // Body: exactly h.size bytes, whatever happens to the file meanwhile.
      let sent = 0;
      const parts = ranges ?? [{ off: 0, len: size }];
      for (const r of parts) {
        for (let pos = r.off; pos < r.off + r.len; ) {
          const want = Math.min(this.ioBuf.length, r.off + r.len - pos);
          const dst = this.used + want <= this.slice ? this.buf : null;
          let got: number;
          if (dst) {
            got = readFull(fd, dst.subarray(this.used), want, pos);
            if (got < want) dst.fill(0, this.used + got, this.used + want); // shrank while read: pad, resend next pass
            this.used += want;
            this.stats.streamBytes += want;
            if (this.used === this.slice) this.flush();
          } else {
            const b = Buffer.allocUnsafe(want);
            got = readFull(fd, b, want, pos);
            if (got < want) b.fill(0, got);
            this.emit(b);
          }
          this.stats.bytesRead += got;
          pos += want;
          sent += want;
          while (this.ready.length > 0) yield this.ready.shift()!;
        }
      }
      this.emit(bodyPadding(sent));
      const after = fstatSync(fd, { bigint: true });
      if (changedWhileRead(before, after) || before.mtimeNs !== e.mtimeNs || Number(before.size) !== e.size) {
        this.stats.changedWhileRead++;
        this.o.log?.warn({ path: showPath(e.path) }, 'file changed while being read; it will be sent again on the next pass');
        return 'changed';
      }
      return 'ok';
    } finally {
      closeSync(fd);
    }
  }
}

function changedWhileRead(a: BigIntStats, b: BigIntStats): boolean {
  return a.size !== b.size || a.mtimeNs !== b.mtimeNs || a.ctimeNs !== b.ctimeNs;
}

function sum(r: Range[]): number {
  let n = 0;
  for (const x of r) n += x.len;
  return n;
}

function base(e: Entry): Omit<TarHeader, 'type' | 'size'> {
  return { path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs };
}

function deleteHeader(path: Buffer): Buffer {
  return encodeHeader({ path, type: 'file', size: 0, mode: 0, uid: 0, gid: 0, mtimeNs: 0n, ferry: { op: 'delete' } });
}
