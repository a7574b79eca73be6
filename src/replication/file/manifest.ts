// The local manifest: what this agent sent for one root in its last pass,
// one line per entry in walk order, written to a temporary file and renamed
// into place only when the receiver has committed the pass. It is streamed
// both ways — never loaded whole — and a sorted merge of the old manifest
// against the new walk yields new, changed and deleted entries in bounded
// memory.

import { closeSync, fsyncSync, openSync, readSync, renameSync, writeSync, existsSync, unlinkSync } from 'node:fs';
import type { Entry, EntryType } from './entry.js';
import { sameEntry } from './entry.js';
import { comparePaths, escapeField, unescapeField } from './paths.js';

const HEADER = '# ferry file manifest v1';
const TYPES = new Set(['f', 'd', 'l', 'p', 'c', 'b']);

export function formatEntry(e: Entry): string {
  return [
    e.path.length === 0 ? '.' : escapeField(e.path),
    e.type,
    e.size,
    e.mtimeNs,
    e.ctimeNs,
    e.mode.toString(8),
    e.uid,
    e.gid,
    e.dev,
    e.ino,
    e.nlink,
    e.rdev,
    e.allocated,
    e.target ? escapeField(e.target) : '-',
  ].join('\t');
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
  private buf: string[] = [];
  private bufLen = 0;
  private last: Buffer | null = null;
  count = 0;

  constructor(readonly path: string) {
    this.fd = openSync(`${path}.tmp`, 'w', 0o600);
    this.buf.push(HEADER + '\n');
  }

  add(e: Entry): void {
    if (this.last !== null && comparePaths(this.last, e.path) >= 0) {
      throw new Error('manifest entries must arrive in walk order');
    }
    this.last = e.path;
    const line = formatEntry(e) + '\n';
    this.buf.push(line);
    this.bufLen += line.length;
    this.count++;
    if (this.bufLen > 256 * 1024) this.flush();
  }

  private flush(): void {
    if (this.buf.length === 0) return;
    writeSync(this.fd, this.buf.join(''), null, 'latin1');
    this.buf = [];
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

/** Reads a manifest lazily, one 1 MiB block at a time. A missing file reads as empty. */
export function* readManifest(path: string): Generator<Entry> {
  if (!existsSync(path)) return;
  const fd = openSync(path, 'r');
  try {
    const block = Buffer.allocUnsafe(1 << 20);
    let rest = '';
    let lineNo = 0;
    for (;;) {
      const n = readSync(fd, block, 0, block.length, null);
      if (n === 0) break;
      const text = rest + block.toString('latin1', 0, n);
      const lines = text.split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        lineNo++;
        if (lineNo === 1) {
          if (line !== HEADER) throw new Error(`${path} is not a ferry file manifest`);
          continue;
        }
        yield parseEntry(line, `${path}:${lineNo}`);
      }
    }
    if (rest.length > 0) throw new Error(`${path} ends in a partial line (torn write?)`);
  } finally {
    closeSync(fd);
  }
}

export type DiffItem =
  | { kind: 'new'; cur: Entry }
  | { kind: 'changed'; cur: Entry; old: Entry }
  | { kind: 'same'; cur: Entry; old: Entry }
  | { kind: 'deleted'; old: Entry };

/** Sorted merge of the old manifest against the current walk (both in walk order). */
export function* diffEntries(old: Iterator<Entry>, cur: Iterator<Entry>): Generator<DiffItem> {
  let o = old.next();
  let c = cur.next();
  while (!o.done || !c.done) {
    if (c.done) {
      yield { kind: 'deleted', old: o.value as Entry };
      o = old.next();
    } else if (o.done) {
      yield { kind: 'new', cur: c.value };
      c = cur.next();
    } else {
      const cmp = comparePaths(o.value.path, c.value.path);
      if (cmp < 0) {
        yield { kind: 'deleted', old: o.value };
        o = old.next();
      } else if (cmp > 0) {
        yield { kind: 'new', cur: c.value };
        c = cur.next();
      } else {
        yield sameEntry(o.value, c.value)
          ? { kind: 'same', cur: c.value, old: o.value }
          : { kind: 'changed', cur: c.value, old: o.value };
        o = old.next();
        c = cur.next();
      }
    }
  }
}

/**
 * What the receiver holds after a cut pass: the interrupted pass's partial
 * manifest up to the receiver's last committed path, the previous manifest
 * beyond it.
 */
export function* resumeBasis(partial: Iterator<Entry>, old: Iterator<Entry>, after: Buffer): Generator<Entry> {
  for (let p = partial.next(); !p.done; p = partial.next()) {
    if (comparePaths(p.value.path, after) > 0) {
      partial.return?.(undefined);
      break;
    }
    yield p.value;
  }
  for (let o = old.next(); !o.done; o = old.next()) {
    if (comparePaths(o.value.path, after) > 0) yield o.value;
  }
}

/** Reads a manifest that may end in a torn line (a partial one): stops at the last whole line. */
export function* readPartialManifest(path: string): Generator<Entry> {
  try {
    yield* readManifest(path);
  } catch (e) {
    if (!/partial line/.test((e as Error).message)) throw e;
  }
}
