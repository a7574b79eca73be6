// The receiver's file extractor: applies a ferry pax tar stream to one
// target root and never writes outside it. Every path is checked before use:
// absolute paths, '..' and '.' components, empty components and NUL bytes
// are refused, and every parent on the way must be a real directory, never
// a symlink (so a symlink planted by an earlier entry cannot redirect a
// later one). Files are written under a temporary name in their directory
// and renamed into place, so a cut never leaves a half-written file under a
// real name; the exceptions are a small new file in a directory this
// session created, which the writer thread creates under its real name
// (file-writers.ts says why that is sound: a resumed pass replaces it), and
// a symlink there (freshSymlink, for the same reason). Owner and group are
// applied as numbers, then xattrs/ACLs, then mode, then mtimes; directory
// mtimes are set when the stream leaves the directory. Pax values are
// checked before anything is created; on any
// error the entry's descriptor is closed once and its temporary file
// removed. With `rootFd` the root is pinned: every path is resolved through
// that open directory (/proc/PID/fd/N), so replacing the root's path by a
// symlink while a session runs cannot redirect it. Owns only the target
// tree; knows nothing of sockets.

import {
  closeSync, constants, fchmodSync, fchownSync, fstatSync, ftruncateSync, futimesSync, lchownSync, linkSync,
  lstatSync, lutimesSync, mkdirSync, openSync, renameSync, rmSync, statfsSync, symlinkSync, unlinkSync, writeSync, chmodSync,
  type Stats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { FerryError } from '../errors/ferry-error.js';
import { fdPath } from '../platform/fd-path.js';
import { exec } from '../platform/exec.js';
import type { Logger } from '../platform/log.js';
import { absPath, isUnder, parentRel, showPath } from '../protocol/paths.js';
import { parseRanges, type Range } from '../protocol/file-pieces.js';
import { parseTarBatches, TarFormatError, type ParseLimits, type TarEvent, type TarHeader } from '../protocol/tar-format.js';
import { loadXattrs, XATTRS_REFUSED, type XattrOps } from '../platform/xattrs.js';
import { targetWriteError } from './target-errors.js';
import { BatchWriter } from './file-writers.js';
import { copyPatchBase } from './patch-base.js';
import { LowSpaceFlush } from './low-space.js';

/** statfs f_type of btrfs (BTRFS_SUPER_MAGIC). */
const BTRFS_MAGIC = 0x9123683e;

/**
 * On btrfs with less free space than this, each new file is truncated to 0
 * right after it is created: btrfs then starts writing the file's data when
 * it is closed (the flag it sets on a file truncated to zero, so that a
 * rewritten file reaches the disk) instead of keeping it in the page cache.
 * Why: every file whose data is not yet on disk holds a worst-case
 * reservation of metadata space, which btrfs lets outgrow the metadata it
 * has only as far as the unallocated space allows; on a small or nearly
 * full file system each create then waits in btrfs_reserve_metadata_bytes
 * while btrfs writes data out to make room. With plenty of space the
 * truncate only moves that writeback onto the writing thread.
 * Measured 2026-12-06, new files written into a new btrfs on a loop device
 * (open, write, close; a final syncfs included), without / with:
 *   7,931 files, 109 MB (the whole-server bench's /home): 600 MB file
 *   system 2.67 / 0.62-0.78 s; 2 GiB 0.62 / 0.55 s; 4 GiB 0.62 / 0.80 s;
 *   8 GiB 0.50 / 0.55 s;
 *   79,310 files, 1.09 GB: 2 GiB 15.0 / 5.9 s; 4 GiB 5.2 / 6.4 s;
 *   8 GiB 5.3 / 6.7 s; 50 GiB 4.5 / 5.7 s.
 * On xfs and ext4 nothing waits and the truncate only costs (0.05-0.15 s
 * on the 7,931 files): btrfs only. Only the small files the writer threads
 * write, and only those with a body: what waits is a reservation per file,
 * and a large file's close would then block the extractor's thread on its
 * writeback (110 ms for 512 MiB). The free space (f_bavail: on btrfs
 * f_bfree also counts unused metadata space) is read again as the pass
 * writes (low-space.ts), so a pass that fills a file system turns it on
 * when it gets there (btrfs counts data still in the page cache there only
 * partly, so later than the data alone would say).
 */
const BTRFS_FLUSH_FREE_BYTES = 2 * 1024 ** 3;

/** The target root's file system: whether it is btrfs, and its free space (undefined: statfs failed). */
function targetSpace(root: Buffer): { btrfs: boolean; free: number | undefined } {
  try {
    const s = statfsSync(root);
    return { btrfs: s.type === BTRFS_MAGIC, free: s.bavail * s.bsize };
  } catch {
    return { btrfs: false, free: undefined };
  }
}

export interface ExtractOptions {
  /** The target root; must exist and be a directory. */
  root: string;
  /** An open descriptor of the root (O_DIRECTORY): paths are resolved through it, not through `root`. The caller closes it. */
  rootFd?: number;
  /** The target's name, for error messages (default: the root path). */
  name?: string;
  log?: Logger;
  limits?: ParseLimits;
  /** Apply owners (default: when running as root). */
  owners?: boolean;
  /** Called after each entry is in place, in stream order (with writer threads, possibly some entries later). */
  onEntry?: (index: number, path: Buffer) => void;
  /** Writer threads for small new files (file-writers.ts); 0 writes them on this thread; default: the process's shared pool. */
  writers?: number;
  /** Free space under which the target's file system is flushed (low-space.ts; default there). */
  lowSpaceBytes?: number;
}

export interface ExtractStats {
  entries: number;
  files: number;
  bytesWritten: number;
  deleted: number;
}

interface OpenDir {
  path: Buffer;
  mtimeNs: bigint;
  atimeNs: bigint;
  /**
   * False only when this session made the directory's xattrs exactly the stream's, they hold no default ACL and
   * the directory is not setgid: an entry created in it then gets no ACL, the receiver's own owner and group,
   * and its create mode less the umask.
   */
  mayInherit: boolean;
  /**
   * Created by this session (mkdir, not found): it holds only what this stream put there since. Small new files in
   * such a directory are written by the writer threads, under their real names: nothing of an earlier pass can be
   * in their way. Never carried over to another session: a resumed pass finds the directory and takes the careful
   * path in it (what a cut left there is replaced).
   */
  fresh: boolean;
}

const DEFAULT_ACL = 'system.posix_acl_default';

const TMP_PREFIX = '.ferry-tmp-';
/**
 * Largest FERRY.size accepted: 1 PiB. Beyond any file a migrated server
 * holds, and it keeps a hostile map from making absurd apparent files.
 */
export const MAX_FILE_BYTES = 2 ** 50;

function badValue(rel: Buffer, why: string): FerryError {
  return new FerryError('FERRY_BAD_TAR', `tar entry ${JSON.stringify(showPath(rel))}: ${why}`);
}

/** FERRY.size (checked), when the entry has one; a FERRY.map needs it. */
function ferrySize(h: TarHeader, rel: Buffer): number | undefined {
  const raw = h.ferry?.size;
  if (raw === undefined) {
    if (h.ferry?.map !== undefined) throw badValue(rel, 'FERRY.map without FERRY.size');
    return undefined;
  }
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!(n <= MAX_FILE_BYTES)) throw badValue(rel, `FERRY.size ${JSON.stringify(raw.slice(0, 40))} is not a byte count up to ${MAX_FILE_BYTES} (1 PiB)`);
  if (h.ferry?.map === undefined && h.ferry?.op !== 'patch' && n < h.size) throw badValue(rel, `FERRY.size ${n} is smaller than the ${h.size} bytes the entry carries`);
  return n;
}

export function unsafe(path: Buffer, why: string): FerryError {
  return new FerryError('FERRY_UNSAFE_ENTRY', `refused tar entry ${JSON.stringify(showPath(path))}: ${why}`);
}

/** Validates a relative path from the stream; returns it without a trailing '/' ('' for the root). */
export function checkRelPath(p: Buffer): Buffer {
  let q = p;
  while (q.length > 1 && q[q.length - 1] === 0x2f) q = q.subarray(0, q.length - 1);
  if (q.length === 1 && q[0] === 0x2e) return Buffer.alloc(0);
  if (q.length >= 2 && q[0] === 0x2e && q[1] === 0x2f) q = q.subarray(2); // "./x" as tar writes it
  if (q.length === 0) throw unsafe(p, 'empty path');
  if (q[0] === 0x2f) throw unsafe(p, 'absolute path');
  if (q.includes(0)) throw unsafe(p, 'NUL byte in path');
  let start = 0;
  for (let i = 0; i <= q.length; i++) {
    if (i === q.length || q[i] === 0x2f) {
      const len = i - start;
      if (len === 0) throw unsafe(p, 'empty path component');
      if (len === 1 && q[start] === 0x2e) throw unsafe(p, "'.' component");
      if (len === 2 && q[start] === 0x2e && q[start + 1] === 0x2e) throw unsafe(p, "'..' component");
      if (len > 255) throw unsafe(p, 'path component longer than 255 bytes');
      start = i + 1;
    }
  }
  return q;
}

/**
 * A stream time (ns since 1970) as node:fs's utimes calls take it: seconds half a microsecond past the
 * time's microsecond (libuv truncates the double to microseconds, and the exact time's double can fall just
 * below its microsecond), or before 1970 a Date (to the millisecond, rounded down), since node:fs sets the
 * current time for a negative number of seconds.
 */
const T = (ns: bigint): number | Date => (ns < 0n ? new Date(Number((ns - 999_999n) / 1_000_000n)) : (Number(ns / 1000n) + 0.5) / 1e6);

/** Throws unless every parent directory of rel (relative to root) exists and is a real directory, not a symlink. */
export function assertRealParents(root: Buffer, rel: Buffer, shown: Buffer = rel, known: Buffer = Buffer.alloc(0)): void {
  const parent = parentRel(rel);
  if (parent.length === 0) return;
  // `known` (an ancestor of parent, checked before): only the components below it are looked at.
  let i = known.length === 0 ? 0 : known.length + 1;
  if (i > parent.length) return;
  for (;;) {
    const j = parent.indexOf(0x2f, i);
    const prefix = j < 0 ? parent : parent.subarray(0, j);
    let st: Stats;
    try {
      st = lstatSync(absPath(root, prefix));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw unsafe(shown, `parent directory ${JSON.stringify(showPath(prefix))} does not exist`);
      throw e;
    }
    if (st.isSymbolicLink()) throw unsafe(shown, `path passes through the symlink ${JSON.stringify(showPath(prefix))}`);
    if (!st.isDirectory()) throw unsafe(shown, `parent ${JSON.stringify(showPath(prefix))} is not a directory`);
    if (j < 0) return;
    i = j + 1;
  }
}

export class FileExtractor {
  readonly stats: ExtractStats = { entries: 0, files: 0, bytesWritten: 0, deleted: 0 };
  private readonly rootBuf: Buffer;
  private readonly owners: boolean;
  private readonly dirs: OpenDir[] = [];
  /**
   * The deepest relative directory known to be a real directory (not a symlink), it and all its ancestors,
   * since the last change under them. Kept as a chain rather than one parent: the walk order comes back to a
   * parent after each subtree, and checking the whole chain again each time was about one lstat per entry
   * (2026-12-05, 43,000-entry /usr tree: depth ~6, one parent change every ~7 entries).
   */
  private verified: Buffer | null = null;
  private tmp: Buffer | null = null;
  private readonly tmpTag = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
  private tmpSeq = 0;
  /**
   * Small new files go to writer threads (file-writers.ts). Everything else stays here, and whatever could
   * depend on a file not yet in place waits for the writers first (`writer.drain()`): removing or replacing
   * anything that exists (a directory in the way could hold files being written, and a symlink put in its place
   * would redirect them), a hard link (its target may be in a batch). Directory times and `onEntry` go through
   * `writer.afterWritten`, so a directory's mtime is set after the last rename into it and the resume point
   * never passes a file that is not in place.
   */
  private readonly writer: BatchWriter;
  /** The target is btrfs (see BTRFS_FLUSH_FREE_BYTES). */
  private readonly btrfs: boolean;
  /** Flushes the target's file system when delayed allocations hold its free space (low-space.ts). */
  readonly space: LowSpaceFlush;

  constructor(private readonly o: ExtractOptions) {
    // /proc/PID/fd/N/ rather than /proc/self: external tools (mknod) resolve it too. The
    // trailing '/' makes the root itself resolve to the directory, never to the magic link.
    this.rootBuf = Buffer.from(o.rootFd === undefined ? o.root : fdPath(o.rootFd, true));
    this.owners = o.owners ?? (typeof process.getuid === 'function' && process.getuid() === 0);
    const st = o.rootFd === undefined ? lstatSync(this.rootBuf) : fstatSync(o.rootFd);
    if (!st.isDirectory()) throw new FerryError('FERRY_BAD_TARGET', `target root ${o.root} is not a directory`);
    const start = targetSpace(this.rootBuf);
    this.btrfs = start.btrfs;
    this.writer = new BatchWriter((rel, e) => targetWriteError(e, o.name ?? o.root, `tar entry ${JSON.stringify(showPath(rel))}`), o.writers);
    this.space = new LowSpaceFlush(this.rootBuf.toString(), o.name ?? o.root, o.log, o.lowSpaceBytes);
    // Its looks at the free space begin after the first MiB or 64 entries: until then, the space when the pass began.
    this.space.avail = start.free;
  }

  /** The entry in progress: its descriptor ('batched': its body goes to the writer threads), header and checked path. */
  private fd: number | 'batched' | null = null;
  private header: TarHeader | null = null;
  private rel: Buffer = Buffer.alloc(0);
  /** A sparse entry's ranges (FERRY.map) and where its body stands in them; else the offset of a plain body. */
  private ranges: Range[] | null = null;
  private rangeIdx = 0;
  private rangePos = 0;
  private sequential = 0;

  /** Extracts a whole stream. On error, removes its temporary file and finishes directory times. */
  async extract(source: AsyncIterable<Buffer>): Promise<ExtractStats> {
    this.xops = await loadXattrs();
    try {
      // The work per event is in `event`, a plain method: V8 compiled this loop with all of it inlined, 27-152 ms
      // (its own timing) in one or two jobs a pass (2026-12-06, docs/file-replication.md "The receiver's CPU per entry").
      for await (const batch of parseTarBatches(source, this.o.limits)) {
        for (const ev of batch) {
          const wait = this.event(ev);
          if (wait) await wait;
        }
      }
      await this.writer.drain();
      this.closeDirs(Buffer.alloc(0), true);
      await this.space.settle();
      return this.stats;
    } catch (e) {
      await this.writer.abandon();
      // A flush in progress is left to finish on its own: a session's teardown does not wait on a slow disk.
      const fd = this.fd;
      this.fd = null;
      if (typeof fd === 'number') {
        try {
          closeSync(fd);
        } catch {
          /* the original error matters more */
        }
      }
      this.dropTmp();
      try {
        this.closeDirs(Buffer.alloc(0), true);
      } catch {
        /* best effort */
      }
      if (e instanceof TarFormatError) throw new FerryError('FERRY_BAD_TAR', e.message, { cause: e });
      throw this.header ? targetWriteError(e, this.o.name ?? this.o.root, `tar entry ${JSON.stringify(showPath(this.rel))}`) : e;
    }
  }

  /** Applies one event of the stream; returns a promise only when the next event must wait for it. */
  private event(ev: TarEvent): Promise<void> | undefined {
    if (ev.kind === 'entry') {
      const header = (this.header = ev.entry.header);
      const rel = (this.rel = checkRelPath(header.path));
      const size = ferrySize(header, rel);
      this.ranges = null;
      if (header.type === 'file' && header.ferry?.map !== undefined) {
        try {
          this.ranges = parseRanges(header.ferry.map, size!, 'FERRY.map');
        } catch (e) {
          throw badValue(rel, (e as Error).message);
        }
      }
      this.writer.check();
      const began = this.begin(rel, header, this.ranges !== null);
      if (typeof began === 'object' && began !== null) return began.then((fd) => this.started(fd));
      this.started(began);
      return undefined;
    }
    if (ev.kind === 'data') {
      const fd = this.fd;
      if (fd === null) return undefined;
      let chunk = ev.chunk;
      if (fd === 'batched') this.writer.data(chunk);
      else if (!this.ranges) {
        writeAll(fd, chunk, this.sequential);
        this.sequential += chunk.length;
      } else {
        const ranges = this.ranges;
        while (chunk.length > 0) {
          const r = ranges[this.rangeIdx]!;
          const k = Math.min(chunk.length, r.len - this.rangePos);
          writeAll(fd, chunk.subarray(0, k), r.off + this.rangePos);
          this.rangePos += k;
          chunk = chunk.subarray(k);
          if (this.rangePos === r.len) {
            this.rangeIdx++;
            this.rangePos = 0;
          }
        }
      }
      this.stats.bytesWritten += ev.chunk.length;
      return this.space.note(ev.chunk.length, 0);
    }
    // finishFile closes the descriptor (exactly once, whatever happens).
    const done = this.fd;
    this.fd = null;
    if (done === 'batched') this.writer.end();
    else if (done !== null && this.header) return this.finishFile(done, this.rel, this.header).then(() => this.ended());
    return this.ended();
  }

  /** The entry's descriptor is known (see begin). */
  private started(fd: number | 'batched' | null): void {
    this.fd = fd;
    if (fd === null) this.ranges = null;
    if (this.ranges) {
      let total = 0;
      for (const r of this.ranges) total += r.len;
      if (total !== this.header!.size) throw unsafe(this.rel, 'range map does not add up to the entry size');
    }
    this.rangeIdx = 0;
    this.rangePos = 0;
    this.sequential = 0;
  }

  /** The entry is complete: counted, and reported once it is in place. A promise: wait for the target's flush before the next. */
  private ended(): Promise<void> | undefined {
    this.stats.entries++;
    const onEntry = this.o.onEntry;
    if (onEntry) {
      const i = this.stats.entries - 1;
      const p = this.rel;
      this.writer.afterWritten(() => onEntry(i, p));
    }
    return this.space.note(0, 1);
  }

  private abs(rel: Buffer): Buffer {
    return absPath(this.rootBuf, rel);
  }

  /** Every parent of rel must be a real directory under the root (no symlinks). */
  private checkParents(rel: Buffer, shown: Buffer): void {
    const parent = parentRel(rel);
    if (parent.length === 0) return;
    const v = this.verified;
    if (v && isUnder(v, parent)) return; // parent is the verified directory or one of its ancestors
    // The deepest ancestor of parent in the verified chain: only what lies below it is checked.
    let known: Buffer = Buffer.alloc(0);
    if (v) for (let a = v; a.length > 0; a = parentRel(a)) if (isUnder(parent, a)) {
      known = a;
      break;
    }
    assertRealParents(this.rootBuf, rel, shown, known);
    this.verified = parent;
  }

  /** Something at rel is being replaced or removed: forget verifications that went through it (its parent's chain stays). */
  private touched(rel: Buffer): void {
    if (this.verified && isUnder(this.verified, rel)) this.verified = rel.length === 0 ? null : parentRel(rel);
  }

  /** Directory bookkeeping: leave directories the stream has passed, remember times of those it enters. */
  private enterParent(rel: Buffer): void {
    const parent = parentRel(rel);
    this.closeDirs(parent, false);
    // Push the missing chain from the top of the stack down to parent, remembering their current times.
    const top = this.dirs[this.dirs.length - 1];
    if (rel.length === 0) return;
    if (top && top.path.equals(parent)) return;
    const chain: Buffer[] = [];
    for (let p = parent; ; p = parentRel(p)) {
      if (top && p.equals(top.path)) break;
      chain.unshift(p);
      if (p.length === 0) break;
    }
    for (const p of chain) {
      const st = lstatSync(this.abs(p), { bigint: true });
      this.dirs.push({ path: p, mtimeNs: st.mtimeNs, atimeNs: st.atimeNs, mayInherit: true, fresh: false });
    }
  }

  /** Pops (and sets the times of) every open directory that is not `keep` or one of its ancestors. */
  private closeDirs(keep: Buffer, all: boolean): void {
    while (this.dirs.length > 0) {
      const top = this.dirs[this.dirs.length - 1]!;
      if (!all && isUnder(keep, top.path)) return;
      this.dirs.pop();
      // After the last file renamed into it (a rename changes the directory's mtime).
      this.writer.afterWritten(() => {
        try {
          lutimesSync(this.abs(top.path), T(top.atimeNs), T(top.mtimeNs));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      });
    }
  }

  private tmpName(rel: Buffer): Buffer {
    const parent = parentRel(rel);
    const name = Buffer.from(`${TMP_PREFIX}${this.tmpTag}-${(this.tmpSeq++).toString(36)}`);
    return this.abs(parent.length === 0 ? name : Buffer.concat([parent, Buffer.from('/'), name]));
  }

  private dropTmp(): void {
    if (this.tmp) {
      try {
        rmSync(this.tmp, { force: true, recursive: false });
      } catch {
        /* gone */
      }
      this.tmp = null;
    }
  }

  private existing(abs: Buffer): Stats | null {
    // No exception for the common "nothing there yet" (a full pass asks for every entry): building one costs more than the lstat.
    return lstatSync(abs, { throwIfNoEntry: false }) ?? null;
  }

  /** Replaces whatever is at abs with tmp (a directory in the way is removed first). */
  private async place(rel: Buffer, tmp: Buffer): Promise<void> {
    const abs = this.abs(rel);
    this.touched(rel);
    try {
      // rename(2) replaces a file, symlink or node, and refuses a directory in the way (EISDIR, or ENOTEMPTY/EEXIST):
      // only then is it looked at. An lstat before every rename was 1.2 s of the receiver's profiled time on a
      // 43,000-entry full pass (2026-12-05).
      renameSync(tmp, abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      if (!this.existing(abs)?.isDirectory()) throw e;
      // Files being written into that directory first (see `writer`).
      if (this.writer.pending) await this.writer.drain();
      rmSync(abs, { recursive: true, force: true });
      renameSync(tmp, abs);
    }
    this.tmp = null;
  }

  /**
   * Starts an entry. Returns an fd when body bytes should be written to it, 'batched' when they go to the writer
   * threads. A new regular file, most of a full pass, is begun without a promise unless the writer is full.
   */
  private begin(rel: Buffer, h: TarHeader, sparse: boolean): number | 'batched' | null | Promise<number | 'batched' | null> {
    if (h.type !== 'file' || h.ferry?.op !== undefined || rel.length === 0) return this.beginEntry(rel, h, sparse);
    this.checkParents(rel, h.path);
    this.enterParent(rel);
    // A path named twice whose first file is still with the writer threads: this one follows it in place.
    if (this.writer.pending && this.writer.holds(rel)) return this.writer.drain().then(() => this.beginFile(rel, h, sparse));
    return this.beginFile(rel, h, sparse);
  }

  /** A new file's body goes to the writer threads (batched) or to a descriptor returned here. */
  private beginFile(rel: Buffer, h: TarHeader, sparse: boolean): number | 'batched' | Promise<'batched'> {
    if (this.btrfs) this.writer.flushOnClose = (this.space.avail ?? Infinity) < BTRFS_FLUSH_FREE_BYTES;
    const abs = this.abs(rel);
    const tmp = this.tmpName(rel);
    // Created with its final permissions when the umask and the directory give exactly those (see finishFile).
    const plain = this.plainCreate(h);
    const dir = this.dirs[this.dirs.length - 1];
    if (dir?.fresh && !dir.mayInherit && !sparse && (!h.xattrs || h.xattrs.size === 0) && this.writer.fits(h.size, tmp, abs)) {
      // The same steps as here and in finishFile, on a writer thread: a new file in a directory this session
      // made (nothing of an earlier pass in the way), no xattrs to set, no ACL to inherit (see file-writers.ts).
      const wait = this.writer.begin(rel, tmp, abs, h.size, {
        createMode: plain ? h.mode & 0o777 : 0o600,
        chmod: plain ? -1 : h.mode & 0o7777,
        uid: this.owners && !plain ? h.uid : -1,
        gid: this.owners && !plain ? h.gid : -1,
        mtimeNs: h.mtimeNs,
        truncate: h.ferry?.size !== undefined ? Number(h.ferry.size) : -1,
      });
      if (wait) {
        return wait.then(() => {
          this.stats.files++;
          return 'batched' as const;
        });
      }
      this.stats.files++;
      return 'batched';
    }
    // A large file is written here as it arrives: the small files before it go to the writer meanwhile.
    this.writer.flush();
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, plain ? h.mode & 0o777 : 0o600);
    this.tmp = tmp;
    this.stats.files++;
    return fd;
  }

  /** Starts any other entry (see begin). */
  private async beginEntry(rel: Buffer, h: TarHeader, sparse: boolean): Promise<number | 'batched' | null> {
    const op = h.ferry?.op;
    if (rel.length === 0 && (op !== undefined || h.type !== 'dir')) throw unsafe(h.path, 'the root can only be a directory');
    this.checkParents(rel, h.path);
    this.enterParent(rel);
    const abs = this.abs(rel);
    // A path handed to the writer threads and named again (a stream that names it twice): what this entry does
    // waits until the file is in place, or a symlink or directory made meanwhile would meet the file after it.
    if (this.writer.pending && this.writer.holds(rel)) await this.writer.drain();
    if (op === 'delete') {
      if (this.writer.pending) await this.writer.drain();
      this.touched(rel);
      const st = this.existing(abs);
      if (st) {
        rmSync(abs, { recursive: st.isDirectory(), force: true });
        this.stats.deleted++;
      }
      return null;
    }
    if (op !== undefined && op !== 'patch') throw unsafe(h.path, `unknown FERRY.op '${op}'`);
    switch (h.type) {
      case 'dir': {
        // A full pass finds nothing there: mkdir first, and look only when it is refused (an lstat before every
        // mkdir was one failed statx per directory). A plain directory (see plainCreate) is made with its final
        // mode and keeps the owner mkdir gave it: no lchown, no chmod.
        const plain = this.plainCreate(h);
        if (tryMkdir(abs, plain ? h.mode & 0o777 : 0o700)) {
          const exact = plain || this.meta(abs, h, true);
          if (!plain) chmodSync(abs, h.mode & 0o7777);
          this.dirs.push({ path: rel, mtimeNs: h.mtimeNs, atimeNs: h.mtimeNs, mayInherit: !exact || h.xattrs?.has(DEFAULT_ACL) === true || (h.mode & 0o2000) !== 0, fresh: true });
          // Its parents were checked just now (checkParents) and it is a directory this session made: the entries
          // in it need no lstat of it (one per new directory on a full pass).
          this.verified = rel;
          return null;
        }
        let st = this.existing(abs);
        if (st && this.writer.pending) {
          // Something of this path exists: what this entry does to it waits for the files handed to the writers.
          await this.writer.drain();
          st = this.existing(abs);
        }
        if (st && !st.isDirectory()) {
          this.touched(rel);
          unlinkSync(abs);
          st = null;
        }
        if (!st) mkdirSync(abs, { mode: 0o700 });
        const exact = this.meta(abs, h, !st);
        chmodSync(abs, h.mode & 0o7777);
        this.dirs.push({ path: rel, mtimeNs: h.mtimeNs, atimeNs: h.mtimeNs, mayInherit: !exact || h.xattrs?.has(DEFAULT_ACL) === true || (h.mode & 0o2000) !== 0, fresh: !st });
        return null;
      }
      case 'file': {
        if (op !== 'patch') return this.beginFile(rel, h, sparse);
        const tmp = this.tmpName(rel);
        if (this.writer.pending) await this.writer.drain();
        const st = this.existing(abs);
        if (!st?.isFile()) throw new FerryError('FERRY_PATCH_BASE', `cannot patch ${JSON.stringify(showPath(rel))}: the receiver has no regular file there`);
        this.tmp = tmp; // before the copy, which may fail half-way (a full disk)
        await copyPatchBase(abs, tmp); // a clone where the file system can, else its data ranges only (holes stay holes)
        return openSync(tmp, constants.O_WRONLY | constants.O_NOFOLLOW);
      }
      case 'symlink': {
        if (!h.linkpath) throw unsafe(h.path, 'symlink without a target');
        const dir = this.dirs[this.dirs.length - 1];
        if (dir?.fresh && !dir.mayInherit && this.freshSymlink(rel, abs, h)) return null;
        const tmp = this.tmpName(rel);
        symlinkSync(h.linkpath, tmp);
        this.tmp = tmp;
        if (this.owners) lchownSync(tmp, h.uid, h.gid);
        this.xattrs(tmp, h, true);
        lutimesSync(tmp, T(h.mtimeNs), T(h.mtimeNs));
        await this.place(rel, tmp);
        return null;
      }
      case 'link': {
        if (!h.linkpath) throw unsafe(h.path, 'hard link without a target');
        // Its target may be in a batch not yet in place.
        if (this.writer.pending) await this.writer.drain();
        const target = checkRelPath(h.linkpath);
        this.checkParents(target, h.path);
        this.verified = null;
        const tabs = this.abs(target);
        const tst = this.existing(tabs);
        if (!tst || tst.isDirectory()) throw unsafe(h.path, `hard link target ${JSON.stringify(showPath(target))} is missing or a directory`);
        const cur = this.existing(abs);
        if (cur && cur.ino === tst.ino && cur.dev === tst.dev) return null;
        const tmp = this.tmpName(rel);
        linkSync(tabs, tmp);
        this.tmp = tmp;
        await this.place(rel, tmp);
        return null;
      }
      case 'fifo':
      case 'char':
      case 'block': {
        // mknod(1) takes text paths: make the node at an ASCII name in the root, then rename it into place.
        const tmp = this.abs(Buffer.from(`${TMP_PREFIX}${this.tmpTag}-${(this.tmpSeq++).toString(36)}`));
        const kind = h.type === 'fifo' ? ['p'] : [h.type === 'char' ? 'c' : 'b', String(h.devmajor ?? 0), String(h.devminor ?? 0)];
        await exec('mknod', ['-m', '600', tmp.toString('utf8'), ...kind]);
        this.tmp = tmp;
        this.meta(tmp, h, true);
        chmodSync(tmp, h.mode & 0o7777);
        lutimesSync(tmp, T(h.mtimeNs), T(h.mtimeNs));
        await this.place(rel, tmp);
        return null;
      }
    }
  }

  /**
   * A symlink in a directory this session created, made under its real name (no temporary name, no rename: one
   * xfs log transaction less per symlink), as the writer threads do for small files and for the same reason
   * (file-writers.ts): nothing of an earlier pass can be there, and a symlink a cut leaves with the wrong owner or
   * time is replaced by the resumed pass, which finds the directory and takes the careful way. False when the name
   * is taken (a path named twice): the caller goes the careful way. A failed step removes the symlink it made.
   */
  private freshSymlink(rel: Buffer, abs: Buffer, h: TarHeader): boolean {
    try {
      symlinkSync(h.linkpath!, abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    this.touched(rel);
    try {
      // A new symlink has the receiver's owner and group (its directory is not setgid: mayInherit is false).
      if (this.owners && (h.uid !== this.euid || h.gid !== this.egid)) lchownSync(abs, h.uid, h.gid);
      this.xattrs(abs, h, true);
      lutimesSync(abs, T(h.mtimeNs), T(h.mtimeNs));
    } catch (e) {
      try {
        unlinkSync(abs);
      } catch {
        /* the original error matters more */
      }
      throw e;
    }
    return true;
  }

  private xops: XattrOps | null = null;

  /**
   * Makes the entry's xattrs exactly the stream's; true when they are (false: not applied, warned when some were wanted).
   * `fresh`: the entry was created by this session just now. A fresh entry can hold only what the kernel gave it at
   * creation — an ACL inherited from its directory's default ACL, or a security module's label — so when it wants no
   * xattrs and its directory is known to pass no ACL on, there is nothing to list or remove and the call is skipped.
   * Measured (2026-12-05, 43,000-entry tree from /usr, full pass into xfs): listing xattrs by path for every new
   * entry was 2.2 s of the receiver's ~20 s of profiled time; a security label given at creation now stays.
   */
  private xattrs(abs: Buffer, h: TarHeader, fresh = false): boolean {
    if (fresh && (!h.xattrs || h.xattrs.size === 0) && this.dirs[this.dirs.length - 1]?.mayInherit === false) return true;
    try {
      if (!this.xops) throw new Error('extended attributes not loaded');
      this.xops.writeXattrs(abs, h.xattrs);
      return true;
    } catch (e) {
      if (h.xattrs && h.xattrs.size > 0) {
        // The target refused some names (a namespace or a size its file system has not): the others are set.
        const { code, refused } = e as { code?: unknown; refused?: unknown };
        const some = code === XATTRS_REFUSED && Array.isArray(refused) && refused.length < h.xattrs.size;
        this.o.log?.warn({ path: showPath(h.path), err: (e as Error).message }, some ? 'some extended attributes not applied (the rest are)' : 'extended attributes not applied');
      }
      return false;
    }
  }

  /** Owner (numeric) and xattrs/ACLs; the caller applies mode afterwards (chown clears setuid bits). */
  private meta(abs: Buffer, h: TarHeader, fresh: boolean): boolean {
    if (this.owners) lchownSync(abs, h.uid, h.gid);
    return this.xattrs(abs, h, fresh);
  }

  /**
   * Whether a new file created in the current directory with mode `h.mode & 0o777` already has the entry's
   * owner, group, mode and (no) xattrs, so that fchown and fchmod can be left out: no setuid/setgid/sticky
   * bits, no xattrs wanted, the receiver's own uid/gid, nothing the umask takes away, and a directory this
   * session set up that passes no ACL or group on. Two syscalls of about eight per small file on the
   * receiver's one thread, which is what a full pass waits on (2026-12-05, 43,000-entry /usr tree).
   */
  private plainCreate(h: TarHeader): boolean {
    return (
      (h.mode & 0o7000) === 0 &&
      (!h.xattrs || h.xattrs.size === 0) &&
      h.ferry?.op !== 'patch' &&
      (h.mode & 0o777 & this.umask) === 0 &&
      (!this.owners || (h.uid === this.euid && h.gid === this.egid)) &&
      this.dirs[this.dirs.length - 1]?.mayInherit === false
    );
  }

  private readonly umask = currentUmask();
  private readonly euid = typeof process.geteuid === 'function' ? process.geteuid() : -1;
  private readonly egid = typeof process.getegid === 'function' ? process.getegid() : -1;

  private async finishFile(fd: number, rel: Buffer, h: TarHeader): Promise<void> {
    const tmp = this.tmp!;
    try {
      if (h.ferry?.size !== undefined) ftruncateSync(fd, Number(h.ferry.size));
      const plain = this.plainCreate(h);
      if (this.owners && !plain) fchownSync(fd, h.uid, h.gid);
      this.xattrs(tmp, h, h.ferry?.op !== 'patch');
      if (!plain) fchmodSync(fd, h.mode & 0o7777);
      futimesSync(fd, T(h.mtimeNs), T(h.mtimeNs));
    } finally {
      closeSync(fd);
    }
    await this.place(rel, tmp);
  }
}

/** The process's umask (set and restored: reading it without an argument is deprecated). */
function currentUmask(): number {
  const u = process.umask(0o022);
  process.umask(u);
  return u;
}

/** mkdir; false when something holds the name (EEXIST), which the caller then looks at. */
function tryMkdir(abs: Buffer, mode: number): boolean {
  try {
    mkdirSync(abs, { mode });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

function writeAll(fd: number, b: Buffer, pos: number): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off, pos + off);
}
