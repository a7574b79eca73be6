// The walker: a deterministic depth-first walk of one selected root, names
// sorted bytewise, never crossing into another file system (st_dev), with
// excludes applied before descending. It produces the walk as manifest
// lines (manifest.ts's format), a directory at a time, because that is what
// a pass needs: a delta pass compares each line with the last pass's line
// for the same path and touches nothing else.
//
// Directories are listed and their entries lstat'ed on worker threads
// (several at once: cold inode reads overlap, and the main thread keeps
// only the merge), ahead of the walk in walk order, within a bound of
// directories listed but not yet consumed. The main thread reassembles the
// depth-first order: a directory's entries, each subdirectory's subtree
// right after the subdirectory. The threads are a platform/worker-pool.ts
// pool, the walk's own or the full pass's shared one (pass-workers.ts): if
// workers cannot start, the same listing runs on the main thread. Memory: the listings ahead (bounded), each one
// whole — the largest directory bounds it, as with any sorted walk.

import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Logger } from '../../platform/log.js';
import { WorkerPool, workerBody } from '../../platform/worker-pool.js';
import { loadNativeFs, nativeFsPath, type NativeCloseFd, type NativeListdir, type NativeOpenDirBeneath } from '../../platform/native-fs.js';
import { excludeSpec, matcherFromSpec, type ExcludeMatcher, type ExcludeOptions, type ExcludeSpec } from './excludes.js';
import { fromStats } from './entry.js';
import { formatEntry, linePath, manifestLine } from './manifest.js';
import { compareText, escapeField, showPath } from '../../protocol/paths.js';

export interface WalkOptions extends ExcludeOptions {
  log?: Logger;
  /** Called for entries that cannot be read (vanished, permission): default logs a warning. */
  onSkip?: (path: Buffer, reason: string) => void;
  /** Worker threads listing directories (default: one per core, at most 4; 0 lists on the calling thread). */
  threads?: number;
  /**
   * Threads shared with the rest of the pass (pass-workers.ts) to list on
   * instead of a pool of the walk's own; `threads` is then not used. Started
   * by the walk, closed by whoever made them.
   */
  lister?: (init: ListerInit) => Lister;
}

/** Where the walk's listings run: worker threads (`threads` > 0) or, without them, the calling thread at request time. */
export interface Lister {
  /** Worker threads running now (0: each listing runs when requested). */
  readonly threads: number;
  start(): void;
  list(dir: string): Promise<DirListing>;
  /** Stops the threads if they are the walk's own (shared ones are closed by their owner). */
  close(): Promise<void>;
}

/** One directory's listing: its kept entries as manifest lines, in name order. */
export interface DirListing {
  /** The directory, relative to the root, as latin1 text (byte-exact). */
  dir: string;
  lines: string[];
  /** Regular files' sizes (0 for other types), per line. */
  sizes: number[];
  /** Per line: DESCEND (a directory on the walked file system) | MULTI_LINK (not a directory, nlink > 1). */
  flags: number[];
  /** The directories to descend into, in order (latin1 relative paths), one per DESCEND flag. */
  subdirs: string[];
  skips: { path: string; reason: string }[];
  /** Set when the directory itself could not be listed. */
  error?: string;
  /**
   * Entries that are there but could not be described (an lstat or readlink that failed other than with ENOENT:
   * EIO, EACCES…): their path fields as the manifest writes them. The delta keeps what the last pass had for
   * them instead of deleting it on the receiver (delta.ts).
   */
  kept?: string[];
  /** Set when the native lister (platform/native-fs.ts) listed it. */
  native?: true;
}

export const DESCEND = 1;
export const MULTI_LINK = 2;

/** A stretch of one listing, walked in order: lines [from, to). When the last one descends, the next stretch is its subtree. */
export interface WalkStretch {
  listing: DirListing;
  from: number;
  to: number;
  /**
   * Set on an empty stretch when a directory could not be listed (its listing has `error`): its path field as
   * the manifest writes it ('' for the root). What the last pass had below it is not known to be gone: the
   * delta keeps it (delta.ts) instead of deleting it on the receiver.
   */
  unlisted?: string;
}

/** What listDirectory uses, handed in (on a worker thread, rebuilt there from source text). */
export interface ListerLib {
  fs: typeof fs;
  escapeField: typeof escapeField;
  manifestLine: typeof manifestLine;
  matcherFromSpec: typeof matcherFromSpec;
  listDirectory: typeof listDirectory;
  rawLstatFor: typeof rawLstatFor;
  loadNativeFs: typeof loadNativeFs;
}

/** lstat as Node's binding returns it: the stat fields as doubles, undefined for a missing entry. */
export type RawLstat = (path: Buffer) => Float64Array | undefined;

/**
 * Node's own lstat without the Stats object: `process.binding('fs').lstat`
 * fills one shared Float64Array (dev, mode, nlink, uid, gid, rdev, blksize,
 * ino, size, blocks, then seconds and nanoseconds of atime, mtime, ctime,
 * birthtime). Measured on the issue-14 usr tree (43,000 entries, warm, one
 * thread): the walk's CPU is a third lstat syscalls, a third garbage
 * collection and BigIntStats/Date construction (dateFromMs alone 13%), a
 * third the lines; the raw fields skip the objects and the bigints.
 * The binding is internal: it is used only when it exists and agrees field
 * by field with lstatSync on `probe`, else null (the caller uses lstatSync).
 * Self-contained: its source text runs on the worker threads.
 */
export function rawLstatFor(nodeFs: typeof fs, probe: Buffer): RawLstat | null {
  try {
    const binding = (process as unknown as { binding(name: string): { lstat?: (p: Buffer, big: boolean, req: undefined, throwIfNoEntry: boolean) => Float64Array | undefined } }).binding('fs');
    const lstat = binding.lstat;
    if (typeof lstat !== 'function') return null;
    const raw: RawLstat = (p) => lstat.call(binding, p, false, undefined, false);
    const a = raw(probe);
    const s = nodeFs.lstatSync(probe, { bigint: true });
    if (!(a instanceof Float64Array) || a.length < 16) return null;
    const same =
      BigInt(a[0]!) === s.dev && BigInt(a[1]!) === s.mode && BigInt(a[2]!) === s.nlink && BigInt(a[3]!) === s.uid &&
      BigInt(a[4]!) === s.gid && BigInt(a[5]!) === s.rdev && BigInt(a[7]!) === s.ino && BigInt(a[8]!) === s.size &&
      BigInt(a[9]!) === s.blocks && BigInt(a[12]!) * 1000000000n + BigInt(a[13]!) === s.mtimeNs &&
      BigInt(a[14]!) * 1000000000n + BigInt(a[15]!) === s.ctimeNs;
    return same ? raw : null;
  } catch {
    return null;
  }
}

/**
 * Lists one directory: sorted names, lstat each, excludes, symlink targets,
 * manifest lines. With `native` (platform/native-fs.ts) the names and their
 * lstat come from one call; else readdir, then `raw` (or lstatSync) per
 * entry by its path. Where the native lister declines a directory below the
 * root (more entries than it takes) and `beneath` is given, that directory is
 * opened as the lister opens it (no symlink below the root) and read by
 * node:fs through /proc/self/fd/N (what it says names the directory's own
 * path, not that one). Self-contained on purpose
 * (everything it uses comes in as arguments): its source text runs on the
 * worker threads.
 */
export function listDirectory(
  lib: Pick<ListerLib, 'fs' | 'escapeField' | 'manifestLine'>,
  root: Buffer,
  rootDev: bigint,
  exclude: ExcludeMatcher,
  dir: string,
  raw: RawLstat | null = null,
  native: NativeListdir | null = null,
  beneath: { open: NativeOpenDirBeneath; close: NativeCloseFd } | null = null,
): DirListing {
  const nodeFs = lib.fs;
  const escape = lib.escapeField;
  const line = lib.manifestLine;
  const out: DirListing = { dir, lines: [], sizes: [], flags: [], subdirs: [], skips: [] };
  const slash = Buffer.from('/');
  const base = root.length > 0 && root[root.length - 1] === 0x2f ? root : Buffer.concat([root, slash]);
  const absDir = dir.length === 0 ? base : Buffer.concat([base, Buffer.from(dir, 'latin1'), slash]);
  const relPrefix = dir.length === 0 ? '' : `${dir}/`;
  const escPrefix = dir.length === 0 ? '' : `${escape(Buffer.from(dir, 'latin1'))}/`;
  let names: string[];
  // From `native`: every entry's lstat fields, 16 per entry in the names' order (-errno at 6 where it failed).
  let stats: Float64Array | null = null;
  // From `native`: the targets of the entries its stats call symlinks, in order ('' where it could not read one).
  let targets: string[] | null = null;
  let nextTarget = 0;
  // From `native`: each entry's manifest line, in the names' order ('' where it made none: this loop makes it).
  let lines: string[] | null = null;
  // The path node:fs reads entries by: the directory's own, or /proc/self/fd/N/ for `dirFd` (see below).
  let sysDir = absDir;
  let dirFd = -1;
  // An error's message as node:fs would have worded it by the directory's own path.
  const said = (e: unknown): string => {
    const m = (e as Error).message;
    return dirFd < 0 ? m : m.split(sysDir.toString()).join(absDir.toString());
  };
  try {
    let listed: [string, Float64Array, string?, string?] | null = null;
    if (native !== null) {
      try {
        // The root as the operator named it (a symlink to a directory is followed, as by node:fs); below
        // it, a symlink put in place of this directory or of any above it since the walk listed them is
        // refused (ELOOP), instead of leading the listing out of the tree. (node:fs below has no such check.)
        listed = dir.length === 0 ? native(absDir, true, Buffer.from(escPrefix, 'latin1')) : native(absDir, false, Buffer.from(escPrefix, 'latin1'), base.length);
      } catch (e) {
        // A file-system error is the directory's (as readdir's would be); anything else (more entries
        // than the native lister takes, a failure of its own) is listed with node:fs below.
        if (typeof (e as NodeJS.ErrnoException).errno === 'number') throw e;
      }
    }
    if (listed !== null) {
      // latin1 joined by NUL (a name has none), sorted bytewise there.
      names = listed[0].length === 0 ? [] : listed[0].split('\0');
      stats = listed[1];
      if (listed[2] !== undefined) targets = listed[2].split('\0');
      if (listed[3] !== undefined) lines = listed[3].split('\n');
      out.native = true;
    } else {
      // (A directory whose own path the kernel refuses, PATH_MAX, is left to fail by it, as before.)
      if (native !== null && beneath !== null && dir.length > 0 && absDir.length < 4096 && nodeFs.existsSync('/proc/self/fd')) {
        // Declined by the native lister (too many entries): opened as it opens directories, a symlink put in
        // place of this one or any above it refused (ELOOP, ENOTDIR: the directory's error), and read through
        // the fd (/proc/self/fd/N/name), so that node:fs does not follow such a symlink out of the tree.
        dirFd = beneath.open(absDir.subarray(0, absDir.length - 1), base.length);
        sysDir = Buffer.from(`/proc/self/fd/${dirFd}/`);
      }
      // latin1: one char per byte, so names stay byte-exact without a Buffer each.
      names = nodeFs.readdirSync(sysDir, { encoding: 'latin1' });
      // Char codes are the bytes: the default sort is bytewise.
      names.sort();
    }
  } catch (e) {
    out.error = said(e);
    if (dirFd >= 0) beneath!.close(dirFd);
    return out;
  }
  // The fd (if any) stays open while the entries are read through it.
  try {
    // Doubles are exact up to 2^53; the raw fields are used only below it (and for times after 1970).
    const big = 9007199254740991;
    const rootDevNum = Number(rootDev);
    const ascii = /^[\x00-\x7f]*$/;
    // Bytes escapeField rewrites: most names have none, and are their own escaped form.
    const special = /[\x00-\x20\x7f-\xff%]/;
    // One buffer for every entry's path (the directory's, then the name), made only where a call by path needs it.
    let scratch = Buffer.allocUnsafe(sysDir.length + 256);
    sysDir.copy(scratch);
    const absOf = (nameL: string): Buffer => {
      // A path the kernel would refuse by its own name (PATH_MAX) is asked by it, to fail as it did (ENAMETOOLONG).
      if (dirFd >= 0 && absDir.length + nameL.length >= 4096) return Buffer.concat([absDir, Buffer.from(nameL, 'latin1')]);
      if (sysDir.length + nameL.length > scratch.length) {
        scratch = Buffer.allocUnsafe(sysDir.length + nameL.length);
        sysDir.copy(scratch);
      }
      scratch.write(nameL, sysDir.length, 'latin1');
      return scratch.subarray(0, sysDir.length + nameL.length);
    };
    for (let i = 0; i < names.length; i++) {
      const nameL = names[i]!;
      const rel = relPrefix + nameL;
      // The fields of the line: from the raw binding (doubles, exact below 2^53) or from a BigIntStats.
      let mode: number;
      let size: number;
      let mtimeNs: bigint | string;
      let ctimeNs: bigint | string;
      let uid: number | bigint;
      let gid: number | bigint;
      let dev: bigint | number;
      let ino: bigint | number;
      let nlink: number | bigint;
      let rdev: number | bigint;
      let allocated: number;
      let sameDev: boolean;
      // Its symlink target as the native lister read it (latin1), when it did; its line, when the lister made it.
      let listedTarget = '';
      let listedLine = '';
      try {
        let a: Float64Array | undefined;
        if (stats !== null) {
          a = stats.subarray(i * 16, i * 16 + 16);
          // ENOENT (2): gone since the directory was read; any other failure is asked again below, for its message.
          if (a[6]! === -2) {
            out.skips.push({ path: rel, reason: 'vanished during the walk' });
            continue;
          }
          if (a[6]! < 0) a = undefined;
          // Taken in order whatever follows (excluded or not), as the lister gave one per symlink it statted.
          else {
            if (targets !== null && (a[1]! & 0o170000) === 0o120000) listedTarget = targets[nextTarget++] ?? '';
            if (lines !== null) listedLine = lines[i] ?? '';
          }
        } else {
          a = raw === null ? undefined : raw(absOf(nameL));
          if (raw !== null && a === undefined) {
            out.skips.push({ path: rel, reason: 'vanished during the walk' });
            continue;
          }
        }
        if (a !== undefined && a[0]! <= big && a[7]! <= big && a[8]! <= big && a[5]! <= big && a[12]! > 0 && a[14]! > 0) {
          mode = a[1]!;
          size = a[8]!;
          if (listedLine !== '') mtimeNs = ctimeNs = ''; // in the lister's line already
          else {
            // sec * 1e9 + nsec as text, as a bigint would print (seconds > 0 here).
            const mn = a[13]!;
            const cn = a[15]!;
            mtimeNs = `${a[12]}${mn < 1e8 ? String(mn).padStart(9, '0') : mn}`;
            ctimeNs = `${a[14]}${cn < 1e8 ? String(cn).padStart(9, '0') : cn}`;
          }
          uid = a[3]!;
          gid = a[4]!;
          dev = a[0]!;
          ino = a[7]!;
          nlink = a[2]!;
          rdev = a[5]!;
          allocated = a[9]! * 512;
          sameDev = dev === rootDevNum;
        } else {
          // Its line is made here too (from these bigints), not taken from the lister.
          listedLine = '';
          const st = nodeFs.lstatSync(absOf(nameL), { bigint: true });
          mode = Number(st.mode);
          size = Number(st.size);
          mtimeNs = st.mtimeNs;
          ctimeNs = st.ctimeNs;
          uid = st.uid;
          gid = st.gid;
          dev = st.dev;
          ino = st.ino;
          nlink = st.nlink;
          rdev = st.rdev;
          allocated = Number(st.blocks) * 512;
          sameDev = st.dev === rootDev;
        }
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        out.skips.push({ path: rel, reason: err.code === 'ENOENT' ? 'vanished during the walk' : said(err) });
        if (err.code !== 'ENOENT') (out.kept ??= []).push(escape(Buffer.from(rel, 'latin1')));
        continue;
      }
      const fmt = mode & 0o170000;
      let type: string;
      if (fmt === 0o100000) type = 'f';
      else if (fmt === 0o040000) type = 'd';
      else if (fmt === 0o120000) type = 'l';
      else if (fmt === 0o010000) type = 'p';
      else if (fmt === 0o020000) type = 'c';
      else if (fmt === 0o060000) type = 'b';
      else {
        out.skips.push({ path: rel, reason: 'sockets are not copied' });
        continue;
      }
      const relText = ascii.test(rel) ? rel : Buffer.from(rel, 'latin1').toString('utf8');
      if (exclude(relText, type === 'd')) continue;
      let target = '-';
      if (type === 'l' && listedLine === '') {
        try {
          // Read again by path only where the lister could not (for the error, or a symlink it did not stat).
          target = escape(listedTarget !== '' ? Buffer.from(listedTarget, 'latin1') : nodeFs.readlinkSync(absOf(nameL), { encoding: 'buffer' }));
        } catch (e) {
          out.skips.push({ path: rel, reason: `vanished during the walk (${said(e)})` });
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') (out.kept ??= []).push(escape(Buffer.from(rel, 'latin1')));
          continue;
        }
      }
      if (type !== 'f') size = 0;
      out.lines.push(
        listedLine !== '' ? listedLine : line(
          escPrefix + (special.test(nameL) ? escape(Buffer.from(nameL, 'latin1')) : nameL),
          type,
          size,
          mtimeNs,
          ctimeNs,
          mode & 0o7777,
          uid,
          gid,
          dev,
          ino,
          nlink,
          rdev,
          allocated,
          target,
        ),
      );
      out.sizes.push(size);
      if (type === 'd') {
        // A mount point is copied as a directory; the other file system is not walked.
        if (sameDev) {
          out.flags.push(1);
          out.subdirs.push(rel);
        } else out.flags.push(0);
      } else out.flags.push(nlink > 1 ? 2 : 0);
    }
    return out;
  } finally {
    if (dirFd >= 0) beneath!.close(dirFd);
  }
}

export interface ListerInit {
  /** The root, latin1 (byte-exact). */
  root: string;
  /** The root's st_dev, as text (bigints travel as text in init data). */
  dev: string;
  spec: ExcludeSpec;
  /** Where the native helper is (platform/native-fs.ts), when it loaded on the walk's thread: listings use it. */
  native?: string;
}

/** One thread's lister. Self-contained: its source text runs on the worker threads. */
function setupLister(init: ListerInit, lib: ListerLib): (dir: string) => DirListing {
  const root = Buffer.from(init.root, 'latin1');
  const dev = BigInt(init.dev);
  const exclude = lib.matcherFromSpec(init.spec);
  const raw = lib.rawLstatFor(lib.fs, root);
  const loaded = init.native === undefined ? null : lib.loadNativeFs(init.native);
  const native = loaded?.listdir ?? null;
  const beneath = loaded ? { open: loaded.openDirBeneath, close: loaded.closeFd } : null;
  return (dir) => {
    try {
      return lib.listDirectory(lib, root, dev, exclude, dir, raw, native, beneath);
    } catch (e) {
      return { dir, lines: [], sizes: [], flags: [], subdirs: [], skips: [], error: String((e as Error)?.message ?? e) };
    }
  };
}

export const listerBody = workerBody({
  name: 'directory listing',
  modules: { fs: 'node:fs' },
  helpers: { escapeField, manifestLine, matcherFromSpec, listDirectory, rawLstatFor, loadNativeFs },
  setup: setupLister,
});

/** A listing for threads that serve several walks (sharedListerBody): the walk's own init travels with each task. */
export interface WalkListTask {
  /** Names the walk among those the threads serve (a number its owner gives each walk). */
  walk: number;
  init: ListerInit;
  dir: string;
}

/**
 * One thread's listers of several walks, each set up (setupLister) at the
 * walk's first task on that thread and kept for the next ones. Lets one pool
 * of threads serve the walks of several passes, one after the other or at
 * the same time (a whole-server run: pass-workers.ts). The init rides along
 * with every task (its root, st_dev and exclude rules: a few hundred bytes
 * of structured clone per listing) because which thread runs a task is the
 * pool's choice. Self-contained: its source text runs on the worker threads.
 */
function setupWalkListers(_init: unknown, lib: ListerLib & { setupLister: typeof setupLister }): (t: WalkListTask) => DirListing {
  const walks = new Map<number, (dir: string) => DirListing>();
  return (t) => {
    let list = walks.get(t.walk);
    if (!list) {
      list = lib.setupLister(t.init, lib);
      walks.set(t.walk, list);
      // At most 16 kept, more than a whole-server run has walks at once (--parallel 8 and the small volumes' lane);
      // the oldest is dropped: a task carries its init, so a dropped walk is set up again.
      if (walks.size > 16) walks.delete(walks.keys().next().value as number);
    }
    return list(t.dir);
  };
}

/** The lister lane of threads shared by several walks (pass-workers.ts): tasks are WalkListTask. */
export const sharedListerBody = workerBody({
  name: 'directory listing of several walks',
  modules: { fs: 'node:fs' },
  helpers: { escapeField, manifestLine, matcherFromSpec, listDirectory, rawLstatFor, loadNativeFs, setupLister },
  setup: setupWalkListers,
});

/** The walk's own pool of listers (a walk without shared threads: tests, a pass's fallback). */
function ownLister(init: ListerInit, threads: number): Lister {
  const pool = new WorkerPool(listerBody, init, { size: threads });
  return {
    get threads() {
      return pool.threads;
    },
    start: () => pool.start(),
    list: (dir) => pool.run(dir),
    close: () => pool.close(),
  };
}

/** Directories listed (or being listed) ahead of the walk, at most … */
const AHEAD = 256;
/** … and entries held in listings that arrived but are not yet walked. */
const AHEAD_ENTRIES = 16_384;

/** A binary min-heap of relative directory paths in walk order. */
class DirHeap {
  private readonly a: string[] = [];
  get size(): number {
    return this.a.length;
  }
  push(v: string): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (compareText(a[p]!, a[i]!) <= 0) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): string | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && compareText(a[l]!, a[m]!) < 0) m = l;
        if (r < a.length && compareText(a[r]!, a[m]!) < 0) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

export class Walker {
  private readonly rootBuf: Buffer;
  private readonly rootLine: string;
  private readonly rootDev: bigint;
  private readonly spec: ExcludeSpec;
  private readonly skip: (path: Buffer, reason: string) => void;
  private readonly pool: Lister;
  /** Listings requested and not yet consumed. */
  private readonly ahead = new Map<string, Promise<DirListing>>();
  /** Directories known (their parent was listed) and not yet requested. */
  private readonly known = new DirHeap();
  /** Entries in listings that arrived and were not entered yet. */
  private aheadEntries = 0;
  /** Listings requested from the workers and not arrived yet. */
  private inFlight = 0;
  /** The last directory whose listing the walk took: everything before it in walk order is done. */
  private consumed: string | null = null;
  private readonly stack: { listing: DirListing; next: number; sub: number }[] = [];
  private started = false;
  private closed = false;

  constructor(root: string, options: WalkOptions = {}) {
    this.rootBuf = Buffer.from(root);
    this.skip = options.onSkip ?? ((p, reason) => options.log?.warn({ path: showPath(p) }, `skipped: ${reason}`));
    const st = fs.lstatSync(this.rootBuf, { bigint: true });
    if (!st.isDirectory()) throw new Error(`${root} is not a directory`);
    this.rootDev = st.dev;
    this.rootLine = formatEntry(fromStats(Buffer.alloc(0), 'd', st));
    this.spec = excludeSpec(root, options);
    // One per core (at most 4): on a cold cache several listings wait on the disk at once; on a warm
    // one each worker costs its start-up and message passing, so no more than the cores can run.
    const threads = options.threads ?? Math.min(4, availableParallelism());
    const native = nativeFsPath();
    options.log?.debug({ root: showPath(this.rootBuf), lister: native !== null ? 'native' : 'node:fs' }, 'walk');
    const init: ListerInit = { root: this.rootBuf.toString('latin1'), dev: String(this.rootDev), spec: this.spec, ...(native !== null ? { native } : {}) };
    this.pool = options.lister ? options.lister(init) : ownLister(init, threads);
    this.pool.start();
  }

  private request(dir: string): Promise<DirListing> {
    let p = this.ahead.get(dir);
    if (p) return p;
    // Without workers the listing runs here, now; either way it is learnt before the walk awaits it.
    const onWorkers = this.pool.threads > 0;
    if (onWorkers) this.inFlight++;
    p = this.pool.list(dir).then((l) => {
      if (onWorkers) this.inFlight--;
      this.learn(l);
      return l;
    });
    this.ahead.set(dir, p);
    return p;
  }

  /** A listing arrived: its subdirectories become known, and more are requested ahead. */
  private learn(l: DirListing): void {
    this.aheadEntries += l.lines.length;
    for (const d of l.subdirs) this.known.push(d);
    this.pump();
  }

  private pump(): void {
    if (this.closed || this.pool.threads === 0) return;
    // Listings in flight are bounded too (their size is unknown until they arrive).
    while (this.ahead.size < AHEAD && this.aheadEntries < AHEAD_ENTRIES && this.inFlight < 4 * this.pool.threads && this.known.size > 0) {
      const d = this.known.pop()!;
      if (this.ahead.has(d) || (this.consumed !== null && compareText(d, this.consumed) <= 0)) continue;
      void this.request(d);
    }
  }

  /** Starts listing ahead now (e.g. while the session connects); next() would otherwise start it. */
  prefetch(): void {
    void this.request('');
  }

  /** The root directory's own manifest line (the first of the walk). */
  get root(): string {
    return this.rootLine;
  }

  /** The next stretch of the walk, or null at its end. */
  async next(): Promise<WalkStretch | null> {
    if (!this.started) {
      this.started = true;
      const root = await this.enter('');
      if (root.error !== undefined) return { listing: root, from: 0, to: 0, unlisted: '' };
      // Nothing to walk but entries to keep: an empty stretch, so that the delta learns them.
      if (root.lines.length === 0 && root.kept !== undefined) return { listing: root, from: 0, to: 0 };
    }
    if (this.pendingEnter !== null) {
      // The last stretch ended with a directory: its subtree comes next.
      const sub = this.pendingEnter;
      const subPath = this.pendingEnterPath;
      this.pendingEnter = null;
      const listing = await this.enter(sub);
      if (listing.error !== undefined) return { listing, from: 0, to: 0, unlisted: subPath };
      if (listing.lines.length === 0 && listing.kept !== undefined) return { listing, from: 0, to: 0 };
    }
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) return null;
      const { listing } = top;
      if (top.next >= listing.lines.length) {
        this.stack.pop();
        continue;
      }
      const from = top.next;
      let to = from;
      while (to < listing.lines.length && (listing.flags[to]! & DESCEND) === 0) to++;
      if (to < listing.lines.length) {
        this.pendingEnter = listing.subdirs[top.sub++]!;
        this.pendingEnterPath = linePath(listing.lines[to]!);
        to++;
      }
      top.next = to;
      return { listing, from, to };
    }
  }

  private pendingEnter: string | null = null;
  /** The pending directory's path field in its manifest line (escaped, as the delta compares paths). */
  private pendingEnterPath = '';

  private async enter(dir: string): Promise<DirListing> {
    const listing = await this.request(dir);
    this.ahead.delete(dir);
    this.aheadEntries -= listing.lines.length;
    this.consumed = dir;
    if (listing.error !== undefined) this.skip(Buffer.from(dir, 'latin1'), `cannot list directory: ${listing.error}`);
    for (const s of listing.skips) this.skip(Buffer.from(s.path, 'latin1'), s.reason);
    this.stack.push({ listing, next: 0, sub: 0 });
    this.pump();
    return listing;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool.close();
  }
}
