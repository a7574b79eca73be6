// What both extended-attribute implementations (xattrs-linux.ts,
// xattrs-windows.ts) provide, and the error they raise for a path they
// cannot reach. Kept apart from the chooser (xattrs.ts) so that an
// implementation imports this file, not the module that loads it: no cycle.

import type { NativeXattrList } from './native-fs.js';

export interface XattrOps {
  /** All xattrs of an entry that are copied (xattr-names.ts), sorted by name; empty when there are none. */
  readXattrs(abs: Buffer): Map<string, Buffer>;
  /** The same for an open file; undefined (read them by path) where the platform cannot (absent on Windows). */
  readXattrsFd?(fd: number): Map<string, Buffer> | undefined;
  /**
   * A directory's below the walk's root, read on an fd opened with no symlink below the root (the first
   * `rootLength` bytes of `abs`); undefined (read them by path) where the platform cannot.
   */
  readXattrsDirBeneath?(abs: Buffer, rootLength: number): Map<string, Buffer> | undefined;
  /**
   * Another entry's (not a directory) in a directory below the walk's root, that directory opened as
   * readXattrsDirBeneath opens one and the entry named relative to it, never opened itself; null when the entry is
   * gone; undefined (read it by path) where the platform cannot, or for an entry directly in the root.
   */
  readXattrsBeneath?(abs: Buffer, rootLength: number): Map<string, Buffer> | undefined | null;
  /** A list the native module read (name, value, …: readFiles' withXattrs) as readXattrs gives it. */
  xattrsFromList?(list: NativeXattrList | null): Map<string, Buffer>;
  /**
   * Makes an entry's xattrs exactly `want`: sets what differs, removes the rest (xattr-names.ts: what is not copied
   * is never set, and kept but for a trusted.SGI_* left off xfs). Names the target's file system refuses (a namespace
   * or a size it has not) do not stop the others: the error, thrown after they are set, has code XATTRS_REFUSED and
   * the refused names in `refused`.
   */
  writeXattrs(abs: Buffer, want: Map<string, Buffer> | undefined): void;
}

/** writeXattrs' error code when the target's file system refused some names (`refused`) and every other one was set. */
export const XATTRS_REFUSED = 'FERRY_XATTRS_REFUSED';

/** A path the xattr library cannot reach (readXattrs skips the entry with a warning). */
export class XattrPathError extends Error {}
