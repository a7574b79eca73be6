// The delta: a sorted merge of the last pass's manifest (lines, streamed)
// against the walk (lines, a directory at a time). A line that is byte for
// byte the line of the last pass is an unchanged entry — nothing is parsed
// for it; stretches of them travel as one item, so a pass over a mostly
// unchanged tree costs a string comparison per entry. Only new, changed and
// deleted entries become Entry objects. Both sides are in walk order, so
// memory stays bounded whatever the tree's size.
//
// The common case (a line equal to the old manifest's next line) is decided
// by that one comparison: neither side's path is cut out or compared in
// walk order. Measured (issue 14, usr tree, 43,000 unchanged lines: the
// merge and the manifest writing alone, s22-merge micro-benchmark, CPU
// per round after the first): two paths cut out (linePath) and compared
// per entry here and once more in the manifest writer were about half of
// the merge's CPU.

import { sameEntry, type Entry } from './entry.js';
import { compareFields, linePath, parseEntry } from './manifest.js';
import { MULTI_LINK, type Walker } from './walker.js';

/** What the delta reads of a walk. */
export type WalkSource = Pick<Walker, 'root' | 'next'>;

export type DeltaItem =
  | { kind: 'new'; cur: Entry; line: string }
  | { kind: 'changed'; cur: Entry; old: Entry; line: string }
  | { kind: 'deleted'; old: Entry }
  /** Unchanged entries, in order: their lines, their regular files' bytes, and those of them with other hard links. */
  | { kind: 'same'; lines: string[]; bytes: number; links: Entry[] };

/**
 * Walk lines merged per batch, at most: the read-ahead takes 64 to 128 entries at a time (tar-producer.ts), and a
 * batch's items (parsed entries) are alive until the stream reaches them. Measured (docs/file-replication.md,
 * "The agent's CPU per entry"): whole stretches — a directory of thousands of pages parsed at once — gave
 * an agent peak RSS of 177–188 MB in one set of three runs (main's build 165–169 MB in the same set); with
 * 256-line batches 163–170 MB over six runs.
 */
const BATCH_LINES = 256;

export class Delta {
  private oldLine: string | null = null;
  /** The old line's path field, cut out only when a walk line differs from it (undefined: not yet). */
  private oldPathCut: string | null | undefined = null;
  private oldNo = 1;
  /** Entries the walk saw but could not describe (DirListing.kept), whose old lines are kept, not deleted. */
  private readonly keep = new Set<string>();
  /** The subtree (path and '/') of a kept directory, whose old lines are kept too. */
  private keptDir: string | null = null;
  private same: string[] = [];
  private sameBytes = 0;
  private links: Entry[] = [];

  /** `old`: the last pass's manifest lines (nothing for a full pass). */
  constructor(private readonly old: Iterator<string>) {
    this.advanceOld();
  }

  private advanceOld(): void {
    const o = this.old.next();
    this.oldNo++;
    this.oldLine = o.done ? null : o.value;
    this.oldPathCut = o.done ? null : undefined;
  }

  private get oldPath(): string | null {
    if (this.oldPathCut === undefined) this.oldPathCut = linePath(this.oldLine!);
    return this.oldPathCut;
  }

  private parseOld(): Entry {
    return parseEntry(this.oldLine!, `of the last manifest, line ${this.oldNo}`);
  }

  /** The whole delta: the walk's root line, then its stretches, then what is left of the old manifest (deleted). */
  async *items(walker: WalkSource): AsyncGenerator<DeltaItem> {
    for await (const batch of this.batches(walker)) yield* batch;
  }

  /**
   * The same items, a walk stretch at a time (arrays, none empty): the merge of a stretch is synchronous, so
   * a consumer pays one await per stretch instead of one per entry. Measured (docs/file-replication.md, "The
   * agent's CPU per entry"): two async generators stepped per entry were several promises and microtask hops
   * per entry on the main thread.
   */
  async *batches(walker: WalkSource): AsyncGenerator<DeltaItem[]> {
    const first: DeltaItem[] = [];
    this.merge(first, [walker.root], [0], [0], 0, 1);
    if (first.length > 0) yield first;
    for (let stretch = await walker.next(); stretch; stretch = await walker.next()) {
      if (stretch.unlisted !== undefined) {
        const kept: DeltaItem[] = [];
        this.keepUnlisted(kept, stretch.unlisted);
        if (kept.length > 0) yield kept;
        continue;
      }
      const l = stretch.listing;
      // A listing's first stretch starts at its first line (walker.ts): its kept entries are learnt there, once.
      if (l.kept !== undefined && stretch.from === 0) for (const k of l.kept) this.keep.add(k);
      // In pieces of BATCH_LINES: a whole large directory parsed at once lived long enough to be promoted.
      for (let from = stretch.from; from < stretch.to; from += BATCH_LINES) {
        const out: DeltaItem[] = [];
        this.merge(out, l.lines, l.sizes, l.flags, from, Math.min(stretch.to, from + BATCH_LINES));
        if (out.length > 0) yield out;
      }
    }
    // What is left of the old manifest, in bounded pieces (a deleted subtree can be any size).
    let rest: DeltaItem[] = [];
    while (this.oldLine !== null) {
      this.dropOld(rest);
      if (rest.length >= BATCH_LINES) {
        yield rest;
        rest = [];
      }
    }
    this.flushSame(rest);
    if (rest.length > 0) yield rest;
  }

  private merge(out: DeltaItem[], lines: string[], sizes: number[], flags: number[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const line = lines[i]!;
      const oldLine = this.oldLine;
      if (line === oldLine) {
        // Byte for byte the last pass's line (so the same path, and nothing of the old manifest before it): unchanged.
        // The old string goes on (to the new manifest): the walk's copy dies young instead of being kept until a write.
        this.advanceOld();
        this.keepSame(oldLine, sizes[i]!, (flags[i]! & MULTI_LINK) !== 0 ? parseEntry(line, 'of the walk') : null);
        continue;
      }
      if (oldLine === null) {
        // Nothing of the last manifest left (a full pass): new, without cutting the path out.
        this.flushSame(out);
        out.push({ kind: 'new', cur: parseEntry(line, 'of the walk'), line });
        continue;
      }
      const path = linePath(line);
      while (this.oldPath !== null && compareFields(this.oldPath, path) < 0) this.dropOld(out);
      if (this.oldPath === path) {
        const prev = this.parseOld();
        this.advanceOld();
        const cur = parseEntry(line, 'of the walk');
        // Lines differ in fields a delta ignores (device, inode, allocation): unchanged.
        if (sameEntry(prev, cur)) {
          this.keepSame(line, sizes[i]!, cur.type !== 'd' && cur.nlink > 1 ? cur : null);
          continue;
        }
        this.flushSame(out);
        out.push({ kind: 'changed', cur, old: prev, line });
        continue;
      }
      this.flushSame(out);
      out.push({ kind: 'new', cur: parseEntry(line, 'of the walk'), line });
    }
    this.flushSame(out);
  }

  /**
   * The old line the walk has passed without seeing it: deleted, unless the walk saw the entry but could not
   * describe it (DirListing.kept), or it is below such a directory. Those stay as they were.
   */
  private dropOld(out: DeltaItem[]): void {
    const path = this.oldPath!;
    if (this.keptDir !== null && !path.startsWith(this.keptDir)) this.keptDir = null;
    if (this.keptDir !== null || this.keep.delete(path)) {
      const e = this.parseOld();
      if (this.keptDir === null && e.type === 'd') this.keptDir = `${path}/`;
      // Never a hard-link target (keepUnlisted says why).
      this.keepSame(this.oldLine!, e.type === 'f' ? e.size : 0, null);
      this.advanceOld();
      return;
    }
    this.flushSame(out);
    out.push({ kind: 'deleted', old: this.parseOld() });
    this.advanceOld();
  }

  /**
   * A directory the walk could not list (`path`, its escaped path field; '' for the root): what the last pass
   * had below it stays as it was, on the receiver and in the new manifest, until a pass can list it. Deleting
   * it would have emptied a directory on the receiver for a listing error of this pass (an EIO, a directory
   * swapped for a symlink and refused: walker.ts). Its lines follow its own in the old manifest (walk order).
   */
  private keepUnlisted(out: DeltaItem[], path: string): void {
    const prefix = path === '' ? '' : `${path}/`;
    while (this.oldLine !== null && this.oldPath !== null && this.oldPath.startsWith(prefix)) {
      const e = this.parseOld();
      // Never a hard-link target: its device and inode are the last pass's, unchecked in this one, and a file
      // linked to it now would arrive as a link to its old content (review).
      this.keepSame(this.oldLine, e.type === 'f' ? e.size : 0, null);
      this.advanceOld();
    }
    this.flushSame(out);
  }

  private keepSame(line: string, size: number, link: Entry | null): void {
    this.same.push(line);
    this.sameBytes += size;
    if (link) this.links.push(link);
  }

  private flushSame(out: DeltaItem[]): void {
    if (this.same.length === 0) return;
    out.push({ kind: 'same', lines: this.same, bytes: this.sameBytes, links: this.links });
    this.same = [];
    this.sameBytes = 0;
    this.links = [];
  }
}
