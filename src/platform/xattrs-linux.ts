// Extended attributes (including POSIX ACLs, which Linux stores as the
// system.posix_acl_* xattrs), never following symlinks. Read by ferry's
// native module (src/native/ferry-fs.c `xattrs`, by the path's bytes) where
// it loads, else through @napi-rs/xattr; set and removed through
// @napi-rs/xattr. That library takes paths as text, so a path whose last
// component is not UTF-8 is reached through /proc/self/fd/<parent>/… (a
// directory with a non-UTF-8 name as /proc/self/fd/<fd>/.); without the
// native module, files whose own name is not UTF-8 go without xattrs (with
// a warning) — a limit of the library, not of Linux. Loaded only through
// xattrs.ts (never on Windows).
//
// Why the native read (issue 14, measured on this VM, 17,954 entries of
// /usr/share/man/man1, warm, none with xattrs): @napi-rs/xattr's list by
// path 5.8-7.3 us an entry after the first round (12-17 us in it), the
// native call 2.9-3.5 us. The agent reads every entry's xattrs on its
// main thread (0.43 s of a whole-server run, perf), and a receiver that
// applies a delta lists the xattrs of every entry it changes.

import { isUtf8 } from 'node:buffer';
import { closeSync, lstatSync, openSync, statfsSync } from 'node:fs';
import { getAttributeSync, listAttributesSync, removeAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import { nativeFs, procSelfFds, type NativeXattrList, type NativeXattrs } from './native-fs.js';
import { xattrCopied, xattrJudgedByValue } from './xattr-names.js';
import { XATTRS_REFUSED, XattrPathError } from './xattr-ops.js';

const O_PATH = 0o10000000;
const O_DIRECTORY = 0o200000;


/**
 * Runs fn with a text path that reaches `abs` (bytes), closing any fd it
 * opened. Only valid UTF-8 survives a round trip through a JS string, so only
 * then can the library be given the path as text (node:buffer's isUtf8).
 */
function withTextPath<T>(abs: Buffer, fn: (p: string) => T): T {
  if (isUtf8(abs)) return fn(abs.toString('utf8'));
  const slash = abs.lastIndexOf(0x2f);
  const base = abs.subarray(slash + 1);
  if (!isUtf8(base)) {
    // A directory can be reached as /proc/self/fd/<its own fd>/. ; other types cannot.
    let dfd: number;
    try {
      dfd = openSync(abs, O_PATH | O_DIRECTORY);
    } catch {
      throw new XattrPathError('name is not UTF-8');
    }
    try {
      return fn(`/proc/self/fd/${dfd}/.`);
    } finally {
      closeSync(dfd);
    }
  }
  const fd = openSync(abs.subarray(0, Math.max(slash, 1)), O_PATH | O_DIRECTORY);
  try {
    return fn(`/proc/self/fd/${fd}/${base.toString('utf8')}`);
  } finally {
    closeSync(fd);
  }
}

function unsupported(e: unknown): boolean {
  const m = (e as Error).message ?? '';
  return /not supported|Operation not supported|os error 95|os error 61|No data available/i.test(m);
}

let native: NativeXattrs | null | undefined;

/** The native module's xattrs(), looked up once (null: the library is used). */
function nativeXattrs(): NativeXattrs | null {
  if (native === undefined) native = nativeFs()?.xattrs ?? null;
  return native;
}

/** All xattrs of an entry that are copied (xattr-names.ts), sorted by name; empty when the file system has none. */
export function readXattrs(abs: Buffer): Map<string, Buffer> {
  const n = nativeXattrs();
  return n ? readXattrsNative(n, abs) : readXattrsWithLibrary(abs);
}

/** readXattrs of an open file, through the native module (flistxattr, fgetxattr); undefined without it. */
export function readXattrsFd(fd: number): Map<string, Buffer> | undefined {
  const n = nativeXattrs();
  return n ? readXattrsNative(n, fd) : undefined;
}

/**
 * readXattrs of a directory below the walk's root, on an fd the native module opens with no symlink below the
 * root (openDirBeneath: ELOOP or ENOTDIR for one swapped in since the walk); undefined without the module.
 */
export function readXattrsDirBeneath(abs: Buffer, rootLength: number): Map<string, Buffer> | undefined {
  const n = nativeFs();
  if (!n) return undefined;
  const fd = n.openDirBeneath(abs, rootLength);
  try {
    return readXattrsNative(n.xattrs, fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * readXattrs of an entry that is not a directory, in a directory below the walk's root (the first `rootLength`
 * bytes of `abs`): that directory is opened as openDirBeneath opens it (ELOOP or ENOTDIR for a symlink swapped in
 * above the entry since the walk), and the entry is named relative to it (/proc/self/fd/N/name, never followed
 * nor opened: a FIFO or a device has side effects when opened); null when the entry itself is gone (ENOENT on
 * its name: the directory's own errors are thrown). undefined where this cannot be done (no module, no /proc, an
 * entry directly in the root): read it by path.
 */
export function readXattrsBeneath(abs: Buffer, rootLength: number): Map<string, Buffer> | undefined | null {
  const n = nativeFs();
  const slash = abs.lastIndexOf(0x2f);
  if (!n || slash < rootLength || !procSelfFds()) return undefined;
  const fd = n.openDirBeneath(abs.subarray(0, slash), rootLength);
  try {
    return readXattrsNative(n.xattrs, Buffer.concat([Buffer.from(`/proc/self/fd/${fd}/`), abs.subarray(slash + 1)]));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  } finally {
    closeSync(fd);
  }
}

/** readXattrs through the native module (any path bytes, or an fd; one call); `all`: those not copied too. */
export function readXattrsNative(xattrs: NativeXattrs, target: Buffer | number, all = false): Map<string, Buffer> {
  return xattrsFromList(xattrs(target), all);
}

/**
 * A native list (name, value, … as NativeXattrs gives it) as readXattrs gives it: names decoded from UTF-8
 * (XattrPathError for one that is not), sorted.
 */
export function xattrsFromList(list: NativeXattrList | null, all = false): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (list === null) return out;
  const pairs: [string, Buffer][] = [];
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = xattrName(list[i] as string);
    const value = list[i + 1] as Buffer;
    // Not copied, and so not read for sending: another view of what is (xfs's trusted.SGI_ACL_*), see xattr-names.ts.
    if (all || xattrCopied(name, value)) pairs.push([name, value]);
  }
  // Sorted as the library's names were (JavaScript's string order), so that both give the same headers.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [k, v] of pairs) out.set(k, v);
  return out;
}

/** The names of an entry's xattrs, read natively without their values. */
function xattrNamesNative(xattrs: NativeXattrs, abs: Buffer): string[] {
  const list = xattrs(abs, true);
  const names: string[] = [];
  if (list !== null) for (let i = 0; i < list.length; i += 2) names.push(xattrName(list[i] as string));
  return names;
}

/** A name's bytes (latin1 text) decoded from UTF-8, as the library's names are; it refuses any other. */
function xattrName(raw: string): string {
  if (/^[\x00-\x7f]*$/.test(raw)) return raw;
  const bytes = Buffer.from(raw, 'latin1');
  if (!isUtf8(bytes)) throw new XattrPathError(`an xattr name is not UTF-8 (hex ${bytes.toString('hex')})`);
  return bytes.toString('utf8');
}

/** readXattrs through @napi-rs/xattr (text paths: see withTextPath). */
export function readXattrsWithLibrary(abs: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  withTextPath(abs, (p) => {
    let names: string[];
    try {
      names = listAttributesSync(p);
    } catch (e) {
      if (unsupported(e)) return;
      throw e;
    }
    for (const n of names.sort()) {
      if (!xattrJudgedByValue(n) && !xattrCopied(n)) continue;
      try {
        const v = getAttributeSync(p, n);
        if (v && xattrCopied(n, v)) out.set(n, Buffer.from(v));
      } catch (e) {
        if (!unsupported(e)) throw e;
      }
    }
  });
  return out;
}

/**
 * Makes an entry's xattrs exactly `want`: sets what differs, removes the rest. A name that is not copied
 * (xattr-names.ts) is never set; of those, only a trusted.SGI_* left on a file system other than xfs is removed.
 */
export function writeXattrs(abs: Buffer, want: Map<string, Buffer> | undefined): void {
  // What is never copied (xattr-names.ts) is not written either, whoever sent it.
  if (want && [...want].some(([k, v]) => !xattrCopied(k, v))) want = new Map([...want].filter(([k, v]) => xattrCopied(k, v)));
  const removable = removableNames(abs);
  const n = nativeXattrs();
  if (n) {
    if (!want || want.size === 0) {
      // Nothing wanted: its names alone (no value read), each removed: one list, as the library made. A
      // --cpu-prof of the receiver put 1.3 s in the value reads this skips (entries that inherit a default
      // ACL, /usr full copy into xfs), but its CPU without the profiler did not differ measurably (3 rounds
      // each: 3.73-4.62 s before, 3.87-4.74 s after): fewer calls, no measured gain.
      let names = xattrNamesNative(n, abs);
      // A name judged by its value (security.evm, see removableNames): read with the values then.
      names = names.some(xattrJudgedByValue)
        ? [...readXattrsNative(n, abs, true)].filter(([k, v]) => removable(k, v)).map(([k]) => k)
        : names.filter((k) => removable(k));
      if (names.length > 0) withTextPath(abs, (p) => apply(p, names, []));
      return;
    }
    // What it has, read natively (values included): the library is called only when something must change.
    let have = readXattrsNative(n, abs, true);
    const remove = [...have].filter(([k, v]) => !want.has(k) && removable(k, v)).map(([k]) => k);
    if (remove.length > 0) {
      withTextPath(abs, (p) => apply(p, remove, []));
      // Read again: a removal may take a wanted one with it (xfs lists an ACL twice, see apply).
      have = readXattrsNative(n, abs, true);
    }
    const set = [...want].filter(([k, v]) => !have.get(k)?.equals(v));
    if (set.length > 0) withTextPath(abs, (p) => apply(p, [], set));
    return;
  }
  withTextPath(abs, (p) => {
    let have: string[] = [];
    try {
      have = listAttributesSync(p);
    } catch (e) {
      if (!unsupported(e) || (want && want.size > 0)) throw e;
      return;
    }
    apply(p, have.filter((k) => !want?.has(k) && removable(k)), []);
    // Judged after the removals: one may take a wanted one with it (xfs lists an ACL twice, see apply).
    const set: [string, Buffer][] = [];
    for (const [k, v] of want ?? []) {
      const cur = have.includes(k) ? getAttributeSync(p, k) : null;
      if (!cur || !Buffer.from(cur).equals(v)) set.push([k, v]);
    }
    apply(p, [], set);
  });
}

/** xfs's f_type (XFS_SUPER_MAGIC, "XFSB"). */
const XFS_MAGIC = 0x58465342;

/**
 * Which names an entry has that writeXattrs may remove when they are not wanted: every name that is copied, and of
 * those never copied (xattr-names.ts) only xfs's trusted.SGI_* where the file system is not xfs: there they can
 * only be left from a stream that carried them (ferry before 2026-12-07, tar from an xfs source). On xfs they are
 * its own view of an ACL (removing one removes the ACL; the ACL's own name governs it), and the others (the
 * kernel's security.evm, xfsroot.*, afs.*) are the system's, not the stream's; but a security.evm that is a
 * portable signature (`value` given: ferry copies those) goes like any other. statfs only for an entry that has an
 * SGI name (of a symlink's directory: statfs follows a symlink).
 */
function removableNames(abs: Buffer): (name: string, value?: Buffer) => boolean {
  let onXfs: boolean | undefined;
  return (name, value) => {
    if (xattrCopied(name, value)) return true;
    if (!name.startsWith('trusted.SGI_')) return false;
    onXfs ??= statfsSync(lstatSync(abs).isSymbolicLink() ? abs.subarray(0, Math.max(abs.lastIndexOf(0x2f), 1)) : abs).type === XFS_MAGIC;
    return !onXfs;
  };
}

/** Removes `remove` (in order) and then sets `set` on the entry at text path p. */
function apply(p: string, remove: string[], set: [string, Buffer][]): void {
  for (const k of remove) {
    try {
      removeAttributeSync(p, k);
    } catch (e) {
      // security.selinux and similar may refuse removal; leave them. Gone already is fine: on xfs an ACL is
      // listed twice (system.posix_acl_default and trusted.SGI_ACL_DEFAULT) and removing one removes both,
      // which ended the loop here before the rest was removed (an inherited default ACL stayed).
      if (!/Permission denied|Operation not permitted|os error 1\b|os error 13|No data available|os error 61/.test((e as Error).message)) throw e;
    }
  }
  // A name the target's file system does not take (EOPNOTSUPP: btrfs.compression onto ext4 or xfs; ENOSPC or
  // E2BIG: a value larger than it holds) does not keep the rest from being set; the entry is then reported as not
  // exact (the error, after the others are set).
  const refused: [name: string, why: string][] = [];
  for (const [k, v] of set) {
    try {
      setAttributeSync(p, k, v);
    } catch (e) {
      if (!/Operation not supported|os error 95\b|No space left on device|os error 28\b|Argument list too long|os error 7\b/.test((e as Error).message)) throw e;
      refused.push([k, (e as Error).message]);
    }
  }
  if (refused.length > 0) {
    const said = refused.map(([k, why]) => `${k} (${why})`).join(', ');
    throw Object.assign(new Error(`refused by the target's file system: ${said}`), { code: XATTRS_REFUSED, refused: refused.map(([k]) => k) });
  }
}
