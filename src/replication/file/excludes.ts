// What a file pass leaves out. Default excludes are the parts of a running
// Linux system a migration must not copy (pseudo file systems' contents,
// temporary files, swap files, lost+found, ferry's own data directory);
// configured excludes are rsync-like glob patterns per config and per task.
// Only decides; never touches the file system except to read /proc/swaps.

import { readFileSync } from 'node:fs';
import { relative, isAbsolute, resolve } from 'node:path';

/** Absolute source paths whose *contents* are never copied (the directory itself is). */
export const DEFAULT_EXCLUDED_CONTENTS = ['/proc', '/sys', '/dev', '/run', '/tmp', '/var/run', '/var/lock', '/mnt', '/media'];

/** Absolute paths that are never copied at all, given the agent's data dir and the swap files. */
export function defaultExcludedPaths(agentDataDir?: string): string[] {
  const out = [...swapFiles()];
  if (agentDataDir) out.push(resolve(agentDataDir));
  return out;
}

function swapFiles(): string[] {
  try {
    return readFileSync('/proc/swaps', 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/))
      .filter((f) => f[1] === 'file' && f[0])
      .map((f) => f[0]!.replace(/\\040/g, ' '));
  } catch {
    return [];
  }
}

export interface ExcludeOptions {
  /** Glob patterns (config then task): `*` within a name, `**` across names, `?`, `[…]`; a pattern without '/' matches a name at any depth, a leading '/' anchors it to the root. */
  patterns?: string[];
  /** Absolute paths excluded entirely (agent data dir, swap files). */
  paths?: string[];
  /** Absolute directories whose contents are excluded; default DEFAULT_EXCLUDED_CONTENTS. */
  contents?: string[];
}

/** Decides for one walk whether a relative path (as text) is excluded. */
export type ExcludeMatcher = (rel: string, isDir: boolean) => boolean;

/**
 * What a matcher needs, as plain data: it travels to the walk's worker
 * threads, which rebuild the matcher with `matcherFromSpec`.
 */
export interface ExcludeSpec {
  /** Relative paths excluded entirely. */
  exact: string[];
  /** Relative directories whose contents are excluded ('' is the root). */
  contentsOf: string[];
  globs: GlobSpec[];
}

export interface GlobSpec {
  /** RegExp source, tested against the relative path. */
  re: string;
  dirOnly: boolean;
}

/**
 * The exclude rules of one walk of `root`. Absolute default excludes apply
 * only to what lies strictly below the root: selecting /tmp/x explicitly
 * copies it even though /tmp's contents are excluded by default.
 */
export function excludeSpec(root: string, options: ExcludeOptions = {}): ExcludeSpec {
  const exact = new Set<string>();
  const contentsOf = new Set<string>();
  const under = (abs: string): string | null => {
    const r = relative(resolve(root), resolve(abs));
    if (r === '' || r.startsWith('..') || isAbsolute(r)) return null;
    return r;
  };
  for (const p of options.paths ?? []) {
    const r = under(p);
    if (r !== null) exact.add(r);
  }
  for (const p of options.contents ?? DEFAULT_EXCLUDED_CONTENTS) {
    const r = under(p);
    if (r !== null) contentsOf.add(r);
  }
  // lost+found at the top of the walked file system.
  exact.add('lost+found');
  return { exact: [...exact], contentsOf: [...contentsOf], globs: (options.patterns ?? []).map(globSpec) };
}

/**
 * The matcher of a spec. Self-contained on purpose (no imports, no
 * module-level helpers): its source text is shipped to worker threads.
 */
export function matcherFromSpec(spec: ExcludeSpec): ExcludeMatcher {
  const exact = new Set(spec.exact);
  const contentsOf = new Set(spec.contentsOf);
  const rootContents = contentsOf.has('');
  const globs = spec.globs.map((g) => ({ rx: new RegExp(g.re), dirOnly: g.dirOnly }));
  return (rel, isDir) => {
    if (exact.has(rel)) return true;
    const slash = rel.lastIndexOf('/');
    if (slash >= 0 ? contentsOf.has(rel.slice(0, slash)) : rootContents) return true;
    for (const g of globs) if ((!g.dirOnly || isDir) && g.rx.test(rel)) return true;
    return false;
  };
}

/** Builds the matcher for a walk of `root` (see excludeSpec). */
export function buildExcluder(root: string, options: ExcludeOptions = {}): ExcludeMatcher {
  return matcherFromSpec(excludeSpec(root, options));
}

/** One glob as a RegExp source over relative paths. A trailing '/' matches directories only. */
export function globSpec(pattern: string): GlobSpec {
  let p = pattern;
  const dirOnly = p.endsWith('/') && p.length > 1;
  if (dirOnly) p = p.slice(0, -1);
  const anchored = p.startsWith('/');
  if (anchored) p = p.slice(1);
  const hasSlash = p.includes('/');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (p[i + 1] === '*') {
        re += '.*';
        i++;
        if (p[i + 1] === '/') {
          re = re.slice(0, -2) + '(?:.*/)?';
          i++;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = p.slice(i + 1, end);
        if (cls.startsWith('!')) cls = '^' + cls.slice(1);
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return { re: anchored || hasSlash ? `^${re}$` : `(?:^|/)${re}$`, dirOnly };
}
