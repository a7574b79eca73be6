// Relative paths as raw bytes. File names on Linux are byte strings, not
// text: every path in the file engine is a Buffer relative to the selected
// root ('' is the root itself), compared component by component so that a
// sorted depth-first walk and a sorted manifest agree on one order.

const SLASH = 0x2f;

/** Joins the root (an absolute path) and a relative path, as bytes. */
export function absPath(root: Buffer, rel: Buffer): Buffer {
  if (rel.length === 0) return root;
  if (root.length > 0 && root[root.length - 1] === SLASH) return Buffer.concat([root, rel]);
  return Buffer.concat([root, Buffer.from([SLASH]), rel]);
}

/**
 * Depth-first order: compares paths as if '/' sorted before every other
 * byte, so a directory's whole subtree comes right after it and before its
 * next sibling ("a", "a/b", "a.txt").
 */
export function comparePaths(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * comparePaths for paths held as text, one char per byte (latin1, or
 * escaped manifest fields without '%'): char codes compare as the bytes do.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/** True when `p` is `dir` itself or lies below it. */
export function isUnder(p: Buffer, dir: Buffer): boolean {
  if (dir.length === 0) return true;
  if (p.length < dir.length) return false;
  if (p.compare(dir, 0, dir.length, 0, dir.length) !== 0) return false;
  return p.length === dir.length || p[dir.length] === SLASH;
}

/** The parent of a relative path ('' for a top-level name). */
export function parentRel(p: Buffer): Buffer {
  const i = p.lastIndexOf(SLASH);
  return i < 0 ? Buffer.alloc(0) : p.subarray(0, i);
}

/** A path for people and logs: UTF-8 where valid, \xNN escapes elsewhere. */
export function showPath(p: Buffer): string {
  if (p.length === 0) return '.';
  const s = p.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(p)) return s;
  let out = '';
  for (const b of p) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

/** Escapes bytes for one manifest field: %XX for '%', controls, space-likes and non-ASCII. */
export function escapeField(p: Buffer): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < p.length; i++) {
    const b = p[i]!;
    if (b <= 0x20 || b >= 0x7f || b === 0x25) {
      if (i > start) out += p.toString('latin1', start, i);
      out += `%${b < 16 ? '0' : ''}${b.toString(16)}`;
      start = i + 1;
    }
  }
  if (start < p.length) out += p.toString('latin1', start);
  return out;
}

export function unescapeField(s: string): Buffer {
  if (!s.includes('%')) return Buffer.from(s, 'latin1');
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c);
  }
  return Buffer.from(bytes);
}
