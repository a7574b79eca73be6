// ferry's native file-system helper (src/native/ferry-fs.c, built by
// packaging/build-native.mjs into dist/native/ferry-fs.node): where it is,
// whether it loads here, and how a thread loads it. Optional by design: a
// build without a C compiler and FERRY_NATIVE=0 give null, and the callers
// use node:fs instead, and LZ4 its WebAssembly codec (the same results,
// measured slower). The single
// executable carries the module as an asset and replaces nativeFsPath
// (packaging/sea/build-sea.mjs).

import { existsSync, lstatSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * One directory's entries and their lstat, the targets of those that are
 * symlinks (empty where it failed) and, given the directory's escaped path
 * as `linePrefix`, each entry's manifest line (empty where it made none;
 * see listdir in ferry-fs.c);
 * `follow` opens a directory that is a symlink (the walk's root) instead of
 * refusing it; `rootLength`, the bytes of `dir` that name the walk's root,
 * makes every component below the root refuse a symlink too (ELOOP). Throws node:fs-like errors (with .errno) for the directory,
 * and errors without .errno when it cannot list it for other reasons (too
 * many entries): the caller then lists with node:fs.
 */
export type NativeListdir = (
  dir: Buffer,
  follow?: boolean,
  linePrefix?: Buffer,
  rootLength?: number,
) => [names: string, stats: Float64Array, targets?: string, lines?: string];

/** Doubles per entry in listdir's stats: Node's lstat binding's first 16 fields (a failed lstat: -errno at index 6, blksize). */
export const NATIVE_STAT_FIELDS = 16;

/**
 * Every extended attribute of an open file (an fd) or a path (never
 * following a symlink there), as name, value, name, value… in the kernel's
 * order (with `namesOnly`, each value null: none is read); null when it
 * has none or its file system keeps none. Throws
 * node:fs-like errors (with .errno).
 */
export type NativeXattrs = (target: number | Buffer, namesOnly?: boolean) => NativeXattrList | null;

/** An entry's xattrs as the module lists them: name (latin1 text), value (null when only names were read), … */
export type NativeXattrList = (string | Buffer | null)[];

/**
 * Small files read whole on libuv's thread pool (see readFiles in
 * ferry-fs.c): paths NUL-terminated one after the other, each file's walked
 * size, the buffer they are read into (file after file, size + 1 bytes
 * each), the open flags; resolves to NATIVE_READ_FIELDS doubles a file.
 */
export interface NativeReadFiles {
  (paths: Buffer, sizes: Float64Array, buffer: ArrayBuffer, flags: number): Promise<Float64Array>;
  /**
   * The same, and each file's xattrs from the fd it was read through: per file null (none, or not read), its
   * list as NativeXattrs gives it, or -errno where reading them failed (then read them by path).
   */
  (paths: Buffer, sizes: Float64Array, buffer: ArrayBuffer, flags: number, withXattrs: true): Promise<[Float64Array, NativeXattrsRead[]]>;
}

/** One file's xattrs as readFiles gives them with `withXattrs`. */
export type NativeXattrsRead = NativeXattrList | null | number;

/**
 * Doubles a file in readFiles' result: status (0 or -errno), bytes read, regular file, inode and size (high, low 32
 * bits), mtime, ctime (s, ns), where it failed, device (high, low 32 bits).
 */
export const NATIVE_READ_FIELDS = 14;

/**
 * LZ4 through the system's liblz4 (lz4Compress, lz4Decompress in ferry-fs.c): `u32 LE size | block` into
 * `dst`, or decoded from it into `dst`; the number of bytes written. Compression throws a RangeError when dst
 * is too small, decompression an error with code FERRY_CHUNK_CORRUPT for a block that does not decode to its
 * size prefix (or whose prefix does not fit dst).
 */
export type NativeLz4 = (src: Uint8Array, dst: Uint8Array) => number;

/**
 * One large read of a volume and its chunks' canonical hashes (readHashed in ferry-fs.c), on libuv's pool:
 * reads `buffer.length` bytes of `fd` from `position` (fewer only at the end of the file) and writes each
 * `chunkSize` chunk's hash (protocol/chunk-hash.ts: 0 for zeros, else xxh64 with 0 and 1 moved to 2 and 3)
 * into `hashes`, u64 big-endian; resolves to the bytes read. Both buffers must stay in place (not
 * transferred) until it settles, and the fd open.
 */
export type NativeReadHashed = (fd: number, buffer: Uint8Array, position: number, chunkSize: number, hashes: Uint8Array) => Promise<number>;

/**
 * Reads of a stretch of a volume compared with the receiver's entries (scanSame in ferry-fs.c), on libuv's pool:
 * reads `buffer.length` bytes at `position`, `position + step`, … while below `end`, hashing each read's chunks
 * as NativeReadHashed does, and stops at the first read whose hashes are not all equal to `expected` (u64 BE, one
 * per chunk from `base`) or that is short (the file ended): `at` is that read's offset and `got` its bytes read,
 * its bytes left in `buffer` and its hashes in `hashes`; it then lowers `limit[0]` to `at`. No read at or past
 * `limit[0]` is started (the job stops there, `got` 0): the jobs of one stretch share it, and the caller stops
 * them by setting it to 0. Every read matched: `at` is `end`, `got` 0. The buffers must stay in place (not
 * transferred) until it settles, and the fd open.
 */
export type NativeScanSame = (
  fd: number,
  buffer: Uint8Array,
  position: number,
  chunkSize: number,
  hashes: Uint8Array,
  base: number,
  step: number,
  end: number,
  expected: Uint8Array,
  limit: BigInt64Array,
) => Promise<{ at: number; got: number }>;

/**
 * A directory below the walk's root opened as the lister opens one (openDirBeneath in ferry-fs.c): the
 * first `rootLength` bytes of `path`, ending at a '/', name the root, and no component below it may be a
 * symlink (ELOOP, or ENOTDIR before Linux 5.6). The fd; the caller closes it.
 */
export type NativeOpenDirBeneath = (path: Buffer, rootLength: number) => number;

/** closeFd(fd): closes an fd openDirBeneath gave (on a worker thread, node:fs's closeSync warns about such an fd). */
export type NativeCloseFd = (fd: number) => void;

/**
 * The receiver's batch of small new files written on the calling thread (writeFiles in ferry-fs.c): `files`
 * holds NATIVE_WRITE_FIELDS doubles a file (tmp path offset, length, final path offset, length, body offset,
 * length in `buf`; create mode, chmod or -1, uid or -1, gid or -1, mtime's whole seconds rounded down and
 * nanoseconds, truncate or -1). Returns
 * [done, index of the file that failed or -1, its errno, the step: 0 open, 1 write, 2 ftruncate, 3 fchown,
 * 4 fchmod, 5 futime, 6 close, 7 rename, 8 open of the temporary name]. Throws a TypeError for fields out of
 * range (nothing written).
 */
export type NativeWriteFiles = (buf: ArrayBuffer, files: Float64Array, flushOnClose: boolean) => Float64Array;

/** Doubles a file in writeFiles' `files`. */
export const NATIVE_WRITE_FIELDS = 13;

/** The module's functions (ferry-fs.c). */
export interface NativeFs {
  listdir: NativeListdir;
  readFiles: NativeReadFiles;
  /** Absent from a module built before it (then the receiver's writer uses node:fs). */
  writeFiles?: NativeWriteFiles;
  xattrs: NativeXattrs;
  openDirBeneath: NativeOpenDirBeneath;
  closeFd: NativeCloseFd;
  /** Present when the module was built with xxhash.h (libxxhash-dev): see NativeReadHashed. */
  readHashed?: NativeReadHashed;
  /** Present with readHashed: see NativeScanSame. */
  scanSame?: NativeScanSame;
  /** Present with readHashed: xxh64 (seed 0) of bytes (xxh64 in ferry-fs.c). */
  xxh64?: (data: Uint8Array) => bigint;
  /** Present with readHashed: a running xxh64 whose state is a zero-filled, 8-aligned Uint8Array of xxh64StateBytes bytes. */
  xxh64Update?: (state: Uint8Array, data: Uint8Array) => void;
  /** Present with readHashed: the running xxh64's hash so far (the state goes on). */
  xxh64Digest?: (state: Uint8Array) => bigint;
  /** Present with readHashed: the bytes of xxh64Update's state. */
  xxh64StateBytes?: number;
  /** Present when the host has liblz4 (1.7 or later): see NativeLz4. */
  lz4Compress?: NativeLz4;
  lz4Decompress?: NativeLz4;
}

/**
 * Loads the module at `path` on the calling thread (main or worker), once
 * per thread: its functions, or null when it does not load or lacks one.
 * Self-contained: its source text runs on the worker threads (process.dlopen
 * is there on every thread; the module is context-aware, so each thread
 * gets its own instance, and each dlopen a new one that lives as long as
 * the thread: hence the cache, on this thread's global object).
 */
export function loadNativeFs(path: string): NativeFs | null {
  const g = globalThis as unknown as Record<symbol, Map<string, NativeFs | null> | undefined>;
  const key = Symbol.for('ferry.native-fs');
  const cache = (g[key] ??= new Map());
  if (cache.has(path)) return cache.get(path)!;
  let fns: NativeFs | null = null;
  try {
    const m = {
      exports: {} as { listdir?: unknown; readFiles?: unknown; writeFiles?: unknown; writeFilesFields?: unknown; xattrs?: unknown; openDirBeneath?: unknown; closeFd?: unknown; readHashed?: unknown; scanSame?: unknown; xxh64?: unknown; xxh64Update?: unknown; xxh64Digest?: unknown; xxh64StateBytes?: unknown; lz4Compress?: unknown; lz4Decompress?: unknown },
    };
    process.dlopen(m, path);
    const { listdir, readFiles, writeFiles, writeFilesFields, xattrs, openDirBeneath, closeFd, readHashed, scanSame, xxh64, xxh64Update, xxh64Digest, xxh64StateBytes, lz4Compress, lz4Decompress } = m.exports;
    if (typeof listdir === 'function' && typeof readFiles === 'function' && typeof xattrs === 'function' && typeof openDirBeneath === 'function' && typeof closeFd === 'function') {
      fns = {
        listdir: listdir as NativeListdir,
        readFiles: readFiles as NativeReadFiles,
        xattrs: xattrs as NativeXattrs,
        openDirBeneath: openDirBeneath as NativeOpenDirBeneath,
        closeFd: closeFd as NativeCloseFd,
      };
      // Only from a module whose batches have the fields this code writes (NATIVE_WRITE_FIELDS, said here as a
      // number: this function's text runs on worker threads); a module built before a change of them has not.
      if (typeof writeFiles === 'function' && writeFilesFields === 13) fns.writeFiles = writeFiles as NativeWriteFiles;
      if (typeof readHashed === 'function') fns.readHashed = readHashed as NativeReadHashed;
      if (typeof scanSame === 'function') fns.scanSame = scanSame as NativeScanSame;
      if (typeof xxh64 === 'function' && typeof xxh64Update === 'function' && typeof xxh64Digest === 'function' && typeof xxh64StateBytes === 'number') {
        fns.xxh64 = xxh64 as NonNullable<NativeFs['xxh64']>;
        fns.xxh64Update = xxh64Update as NonNullable<NativeFs['xxh64Update']>;
        fns.xxh64Digest = xxh64Digest as NonNullable<NativeFs['xxh64Digest']>;
        fns.xxh64StateBytes = xxh64StateBytes;
      }
      if (typeof lz4Compress === 'function' && typeof lz4Decompress === 'function') {
        fns.lz4Compress = lz4Compress as NativeLz4;
        fns.lz4Decompress = lz4Decompress as NativeLz4;
      }
    }
  } catch {
    fns = null;
  }
  cache.set(path, fns);
  return fns;
}

/**
 * Whether a module file (by its real path, not a symlink itself) can be
 * trusted to load as this process: it and every directory above it owned by
 * root or by this user and writable by no one else, but a root-owned sticky
 * directory such as /tmp (where others cannot replace what is not theirs).
 */
function trusted(real: string): boolean {
  const uid = typeof process.geteuid === 'function' ? process.geteuid() : 0;
  const file = lstatSync(real);
  if (!file.isFile() || (file.uid !== 0 && file.uid !== uid) || (file.mode & 0o022) !== 0) return false;
  for (let dir = dirname(real); ; dir = dirname(dir)) {
    const st = lstatSync(dir);
    const owner = st.uid === 0 || st.uid === uid;
    const sticky = st.uid === 0 && (st.mode & 0o1000) !== 0;
    if (!st.isDirectory() || !owner || ((st.mode & 0o022) !== 0 && !sticky)) return false;
    if (dir === dirname(dir)) return true;
  }
}

let procFdsThere: boolean | undefined;

/**
 * Whether /proc/self/fd is there (looked at once): what reading an entry by its name below a directory's fd
 * needs (xattrs-linux.ts readXattrsBeneath; walker.ts checks it itself, on worker threads).
 */
export function procSelfFds(): boolean {
  procFdsThere ??= existsSync('/proc/self/fd');
  return procFdsThere;
}

let found: string | null | undefined;

/** The module's functions on this thread, or null (see nativeFsPath). */
export function nativeFs(): NativeFs | null {
  const path = nativeFsPath();
  return path === null ? null : loadNativeFs(path);
}

/**
 * The module's real path when it exists, is trusted (it and the directories
 * above it owned by root or this user, writable by no one else) and loads
 * in this process, else null (FERRY_NATIVE=0: always null; the single
 * executable's bundle replaces this function with one that gives the module
 * written out of its asset, packaging/sea/build-sea.mjs).
 * Looked for beside the compiled code (dist/platform → dist/native) and, for
 * code run from src/ (tests), in the repository's dist/.
 */
export function nativeFsPath(): string | null {
  if (process.env.FERRY_NATIVE === '0') return null;
  if (found !== undefined) return found;
  found = null;
  for (const rel of ['../native/ferry-fs.node', '../../dist/native/ferry-fs.node']) {
    try {
      const named = fileURLToPath(new URL(rel, import.meta.url));
      if (!existsSync(named)) continue;
      const path = realpathSync(named);
      if (trusted(path) && loadNativeFs(path) !== null) {
        found = path;
        break;
      }
    } catch {
      continue;
    }
  }
  return found;
}
