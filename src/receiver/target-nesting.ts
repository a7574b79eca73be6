// Refuses, at receiver start, targets that lie inside one another as plain
// directories (`--target root=T --target home=T/home`): a session on the
// outer target could replace the inner one's path by a symlink and send the
// inner session's writes anywhere. An inner target that is a mount point of
// its own is fine (a mount point cannot be renamed or removed from above),
// which is how a whole-server layout nests /boot or /home. Reads
// /proc/self/mountinfo and the paths; changes nothing.

import { readFileSync, realpathSync } from 'node:fs';
import { UsageError } from '../errors/ferry-error.js';
import { parseMountinfo } from '../platform/mountinfo.js';
import type { TargetSpec } from './session-kind.js';

/** Mount points of this process's mount namespace (an unreadable mountinfo gives none). */
export function mountPoints(mountinfo = '/proc/self/mountinfo'): Set<string> {
  let text: string;
  try {
    text = readFileSync(mountinfo, 'utf8');
  } catch {
    return new Set();
  }
  return new Set(parseMountinfo(text).map((m) => m.mountPoint));
}

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p; // not there yet (a file target is created at its first session)
  }
}

function inside(outer: string, inner: string): boolean {
  return outer === '/' ? inner !== '/' : inner.startsWith(`${outer}/`);
}

/** Throws a UsageError naming both targets when one lies inside another and is not a mount point. */
export function assertTargetsApart(targets: readonly TargetSpec[], mounts: Set<string> = mountPoints()): void {
  const paths = targets.map((t) => ({ t, p: real(t.path) }));
  for (const a of paths) {
    for (const b of paths) {
      if (a === b) continue;
      if (a.p === b.p && a.t.name < b.t.name) {
        throw new UsageError(`targets ${a.t.name} and ${b.t.name} are the same path (${a.p}); give each target its own path`);
      }
      if (inside(a.p, b.p) && !mounts.has(b.p)) {
        throw new UsageError(
          `target ${b.t.name} (${b.p}) lies inside target ${a.t.name} (${a.p}) and is not a mount point: a session on ${a.t.name} could replace it. ` +
            `Mount ${b.t.name}'s file system there, or give targets that do not nest`,
        );
      }
    }
  }
}
