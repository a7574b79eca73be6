// What a whole-server file pass leaves out of one source file system, as
// glob patterns anchored at the walk's root. The file engine's own defaults
// (replication/file/excludes.ts) are absolute paths of the running system,
// resolved against the walk root: right for `ferry migrate --files /`,
// wrong here, where each file system is walked at the agent's own mount of
// it (source-mounts.ts) and the system may live under --source-root. So the
// same defaults — the contents of /tmp, /run, /proc …, swap files (source
// root '/' only), the agent's own state directory — are translated into the
// file system that holds them, relative to where it is mounted. Pure.

import { isAbsolute, relative } from 'node:path';
import { DEFAULT_EXCLUDED_CONTENTS, defaultExcludedPaths } from '../replication/file/excludes.js';

/** `path` inside the file system mounted at `mountPoint` (both absolute on the source system), or undefined. */
function inside(mountPoint: string, path: string): string | undefined {
  const r = relative(mountPoint, path);
  if (r === '' || r.startsWith('..') || isAbsolute(r)) return r === '' ? '' : undefined;
  return r;
}

/** A literal path as a glob: the engine's glob characters taken as themselves. */
const literal = (p: string) => p.replace(/[[*?]/g, (c) => `[${c}]`);

/**
 * Anchored patterns for the file system the source mounts at `mountPoint`
 * (relative to the source root, '/' for the root file system; '' when it is
 * not mounted, which leaves nothing to translate).
 */
export function sourceExcludes(mountPoint: string, o: { sourceRoot: string; stateDir: string }): string[] {
  if (!mountPoint) return [];
  const out: string[] = [];
  for (const dir of DEFAULT_EXCLUDED_CONTENTS) {
    const r = inside(mountPoint, dir);
    if (r === undefined) continue;
    out.push(r === '' ? '/*' : `/${literal(r)}/*`);
  }
  // Paths of the running system: they are this source's only when it is the running system.
  const running = o.sourceRoot === '/' ? defaultExcludedPaths() : [];
  // The agent's state directory, where the source root holds it.
  const state = inside(o.sourceRoot, o.stateDir);
  const paths = [...running, ...(state ? [`/${state}`] : [])];
  for (const p of paths) {
    const r = inside(mountPoint, p);
    if (r) out.push(`/${literal(r)}`);
  }
  return out;
}
