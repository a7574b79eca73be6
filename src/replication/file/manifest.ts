// The local manifest: what this agent sent for one root in its last pass,
// one line per entry in walk order, written to a temporary file and renamed
// into place only when the receiver has committed the pass. It is streamed
// both ways — never loaded whole — and a sorted merge of the old manifest
// against the new walk yields new, changed and deleted entries in bounded
// memory (delta.ts).

import { closeSync, fsyncSync, openSync, readSync, renameSync, writeSync, existsSync, unlinkSync } from 'node:fs';
import { FerryError } from '../../errors/ferry-error.js';
import type { Entry, EntryType } from './entry.js';
import { comparePaths, compareText, escapeField, unescapeField } from '../../protocol/paths.js';

const HEADER = '# ferry file manifest v1';

/** The path field of a manifest line (escaped; '.' for the root). */
export function linePath(line: string): string {
  return line.slice(0, line.indexOf('\t'));
}

/** Walk order of two path fields of manifest lines (the order comparePaths gives their bytes). */
export function compareFields(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '.') return -1;
  if (b === '.') return 1;
  if (a.includes('%') || b.includes('%')) return comparePaths(unescapeField(a), unescapeField(b));
  return compareText(a, b);
}
const TYPES = new Set(['f', 'd', 'l', 'p', 'c', 'b']);

/**
 * The one definition of a manifest line: 14 tab-separated fields, the path
 * and symlink target already escaped (escapeField; '.' for the root, '-' for
 * no target), the mode in octal. Self-contained (no imports, no module-level
 * names): the walker's worker threads run its source text, and it takes the
 * stat's bigints as they come (join prints them as the numbers would), or the
 * same values as exact doubles or decimal text.
 *
 * Joined, not a template: V8 builds a template of 27 parts as a tree of
 * string pieces (ConsStrings) that stays a tree until something reads it
 * whole, and a listing holds its lines until it is sent. Measured (2026-12-07,
 * listDirectory of the whole-server lab's usr/share/man/man1, 17,954 entries,
 * lines of 142 characters on average, heap used after a full GC): 1,150 bytes
 * per entry as a template, 187 joined (19.7 MB against 3.2 MB for that one
 * listing), with no more CPU (the listing took 233 ms joined against 344 ms
 * as a template, the first run of each). The walk's worker thread held such
 * a listing in its old space until the next full collection: 26 MB of it at
 * the whole-server agent's peak.
 */
export function manifestLine(
  path: string,
  type: string,
  size: number,
  mtimeNs: bigint | string,
  ctimeNs: bigint | string,
  mode: number,
  uid: number | bigint,
  gid: number | bigint,
  dev: bigint | number,
  ino: bigint | number,
  nlink: number | bigint,
  rdev: number | bigint,
  allocated: number,
  target: string,
): string {
  return [path, type, size, mtimeNs, ctimeNs, mode.toString(8), uid, gid, dev, ino, nlink, rdev, allocated, target].join('\t');
}

export function formatEntry(e: Entry): string {
  return manifestLine(
    e.path.length === 0 ? '.' : escapeField(e.path),
    e.type,
    e.size,
    e.mtimeNs,
    e.ctimeNs,
    e.mode,
    e.uid,
    e.gid,
    e.dev,
    e.ino,
    e.nlink,
    e.rdev,
    e.allocated,
    e.target ? escapeField(e.target) : '-',
  );
}

export function parseEntry(line: string, where: string): Entry {
  const f = line.split('\t');
  if (f.length !== 14 || !TYPES.has(f[1]!)) throw new Error(`malformed manifest line ${where}`);
  const path = f[0] === '.' ? Buffer.alloc(0) : unescapeField(f[0]!);
  const e: Entry = {
    path,
    type: f[1] as EntryType,
    size: Number(f[2]),
    mtimeNs: BigInt(f[3]!),
    ctimeNs: BigInt(f[4]!),
    mode: parseInt(f[5]!, 8),
    uid: Number(f[6]),
    gid: Number(f[7]),
    dev: BigInt(f[8]!),
    ino: BigInt(f[9]!),
    nlink: Number(f[10]),
    rdev: Number(f[11]),
    allocated: Number(f[12]),
  };
  if (f[13] !== '-') e.target = unescapeField(f[13]!);
  return e;
}

/** Streams entries to `<path>.tmp`; `commit()` fsyncs and renames it over `path`. */
export class ManifestWriter {
  private readonly fd: number;
  /** Lines not yet written (joined with newlines at a flush). */
  private buf: string[] = [];
  private bufLen = 0;
  private last: string | null = null;
  count = 0;

  constructor(readonly path: string) {
    this.fd = openSync(`${path}.tmp`, 'w', 0o600);
    this.buf.push(HEADER);
  }

  add(e: Entry): void {
    this.addLine(formatEntry(e));
  }

  /** Adds one manifest line (manifestLine's format), in walk order. */
  addLine(line: string): void {
    const path = linePath(line);
    if (this.last !== null && compareFields(this.last, path) >= 0) {
      throw new Error('manifest entries must arrive in walk order');
    }
    this.last = path;
    this.push(line);
  }

  /**
   * Adds lines known to be in walk order among themselves — a delta's
   * unchanged lines, each equal to a line of the last manifest, which was
   * checked when it was written — checking only the first against what came
   * before (see delta.ts for the measured reason).
   */
  addOrdered(lines: readonly string[]): void {
    if (lines.length === 0) return;
    this.addLine(lines[0]!);
    for (let i = 1; i < lines.length; i++) this.push(lines[i]!);
    if (lines.length > 1) this.last = linePath(lines[lines.length - 1]!);
  }

  private push(line: string): void {
    this.buf.push(line);
    this.bufLen += line.length + 1;
    this.count++;
    if (this.bufLen > 256 * 1024) this.flush();
  }

  private flush(): void {
    if (this.buf.length === 0) return;
    this.buf.push('');
    writeSync(this.fd, this.buf.join('\n'), null, 'latin1');
    // Emptied, not replaced: a new [] holds small integers until its first push, and the push inlined into
    // optimized callers (the tar producer's) deoptimized on the first line after each flush.
    this.buf.length = 0;
    this.bufLen = 0;
  }

  commit(): void {
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
    renameSync(`${this.path}.tmp`, this.path);
  }

  /** Flushes what was written so far and keeps it under another name. */
  keepAs(path: string): void {
    this.flush();
    closeSync(this.fd);
    renameSync(`${this.path}.tmp`, path);
  }

  abandon(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* closed */
    }
    try {
      unlinkSync(`${this.path}.tmp`);
    } catch {
      /* gone */
    }
  }
}

/** Reads a manifest's lines lazily (header checked), one 1 MiB block at a time. A missing file reads as empty. */
export function* readManifestLines(path: string): Generator<string> {
  if (!existsSync(path)) return;
  const fd = openSync(path, 'r');
  try {
    const block = Buffer.allocUnsafe(1 << 20);
    let rest = '';
    let first = true;
    for (;;) {
      const n = readSync(fd, block, 0, block.length, null);
      if (n === 0) break;
      const text = rest + block.toString('latin1', 0, n);
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        const line = text.slice(start, nl);
        start = nl + 1;
        if (first) {
          first = false;
          if (line !== HEADER) throw new Error(`${path} is not a ferry file manifest`);
          continue;
        }
        yield line;
      }
      rest = text.slice(start);
    }
    if (rest.length > 0) throw new FerryError('FERRY_MANIFEST_TORN', `${path} ends in a partial line (torn write?)`);
  } finally {
    closeSync(fd);
  }
}

/**
 * What the receiver holds after a cut pass: the interrupted pass's partial
 * manifest up to the receiver's last committed path, the previous manifest
 * beyond it (lines; `after` is a path field).
 */
export function* resumeBasis(partial: Iterator<string>, old: Iterator<string>, after: string): Generator<string> {
  for (let p = partial.next(); !p.done; p = partial.next()) {
    if (compareFields(linePath(p.value), after) > 0) {
      partial.return?.(undefined);
      break;
    }
    yield p.value;
  }
  for (let o = old.next(); !o.done; o = old.next()) {
    if (compareFields(linePath(o.value), after) > 0) yield o.value;
  }
}

/** Reads a manifest that may end in a torn line (a partial one): stops at the last whole line. */
export function* readPartialManifestLines(path: string): Generator<string> {
  try {
    yield* readManifestLines(path);
  } catch (e) {
    if (!(e instanceof FerryError && e.code === 'FERRY_MANIFEST_TORN')) throw e;
  }
}
