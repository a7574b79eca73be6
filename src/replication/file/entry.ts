// One file-system entry as the file engine sees it: what the walker
// reports, what the manifest stores and what the tar stream carries.

import type { BigIntStats } from 'node:fs';

export type EntryType = 'f' | 'd' | 'l' | 'p' | 'c' | 'b';

export interface Entry {
  /** Path relative to the root, raw bytes; empty for the root itself. */
  path: Buffer;
  type: EntryType;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** Permission bits and setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  dev: bigint;
  ino: bigint;
  nlink: number;
  /** Device number of a character or block device. */
  rdev: number;
  /** Allocated bytes (st_blocks * 512): fewer than size means holes. */
  allocated: number;
  /** Symlink target (raw bytes). */
  target?: Buffer;
}

export function entryType(st: BigIntStats): EntryType | null {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isFIFO()) return 'p';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  return null; // sockets and anything else are not copied
}

export function fromStats(path: Buffer, type: EntryType, st: BigIntStats, target?: Buffer): Entry {
  return {
    path,
    type,
    size: type === 'f' ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    dev: st.dev,
    ino: st.ino,
    nlink: Number(st.nlink),
    rdev: Number(st.rdev),
    allocated: Number(st.blocks) * 512,
    ...(target ? { target } : {}),
  };
}

/** Same content and metadata as far as a delta pass cares (ctime catches xattr, ACL, link-count and rename changes). */
export function sameEntry(a: Entry, b: Entry): boolean {
  return (
    a.type === b.type &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.nlink === b.nlink &&
    a.rdev === b.rdev &&
    (a.target === undefined ? b.target === undefined : b.target !== undefined && a.target.equals(b.target))
  );
}

export const major = (rdev: number): number => ((rdev >>> 8) & 0xfff) | ((Math.floor(rdev / 2 ** 32) & 0xfffff000) >>> 0);
export const minor = (rdev: number): number => (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
