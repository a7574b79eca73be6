// Extended attributes (including POSIX ACLs, which Linux stores as the
// system.posix_acl_* xattrs) read and written through @napi-rs/xattr, which
// never follows symlinks. That library takes paths as text, so a path whose
// last component is not UTF-8 is reached through /proc/self/fd/<parent>/…
// (a directory with a non-UTF-8 name as /proc/self/fd/<fd>/.); files whose
// own name is not UTF-8 go without xattrs (with a warning) — a limit of the
// library, not of Linux. Loaded only through xattrs.ts (never on Windows).

import { isUtf8 } from 'node:buffer';
import { closeSync, openSync } from 'node:fs';
import { getAttributeSync, listAttributesSync, removeAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import { XattrPathError } from './xattr-ops.js';

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

/** All xattrs of an entry, sorted by name; empty when the file system has none. */
export function readXattrs(abs: Buffer): Map<string, Buffer> {
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
      try {
        const v = getAttributeSync(p, n);
        if (v) out.set(n, Buffer.from(v));
      } catch (e) {
        if (!unsupported(e)) throw e;
      }
    }
  });
  return out;
}

/** Makes an entry's xattrs exactly `want`: sets what differs, removes the rest. */
export function writeXattrs(abs: Buffer, want: Map<string, Buffer> | undefined): void {
  withTextPath(abs, (p) => {
    let have: string[] = [];
    try {
      have = listAttributesSync(p);
    } catch (e) {
      if (!unsupported(e) || (want && want.size > 0)) throw e;
      return;
    }
    for (const n of have) {
      if (!want?.has(n)) {
        try {
          removeAttributeSync(p, n);
        } catch (e) {
          // security.selinux and similar may refuse removal; leave them. Gone already is fine: on xfs an ACL is
          // listed twice (system.posix_acl_default and trusted.SGI_ACL_DEFAULT) and removing one removes both,
          // which ended the loop here before the rest was removed (an inherited default ACL stayed).
          if (!/Permission denied|Operation not permitted|os error 1\b|os error 13|No data available|os error 61/.test((e as Error).message)) throw e;
        }
      }
    }
    if (want) {
      for (const [n, v] of want) {
        const cur = have.includes(n) ? getAttributeSync(p, n) : null;
        if (cur && Buffer.from(cur).equals(v)) continue;
        setAttributeSync(p, n, v);
      }
    }
  });
}
