// The delta: a sorted merge of the last pass's manifest (lines, streamed)
// against the walk (lines, a directory at a time). A line that is byte for
// byte the line of the last pass is an unchanged entry — nothing is parsed
// for it; stretches of them travel as one item, so a pass over a mostly
// unchanged tree costs a string comparison per entry. Only new, changed and
// deleted entries become Entry objects. Both sides are in walk order, so
// memory stays bounded whatever the tree's size.

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

export class Delta {
  private oldLine: string | null = null;
  private oldPath: string | null = null;
  private oldNo = 1;
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
    this.oldPath = o.done ? null : linePath(o.value);
  }

  private parseOld(): Entry {
    return parseEntry(this.oldLine!, `of the last manifest, line ${this.oldNo}`);
  }

  /** The whole delta: the walk's root line, then its stretches, then what is left of the old manifest (deleted). */
  async *items(walker: WalkSource): AsyncGenerator<DeltaItem> {
    yield* this.merge([walker.root], [0], [0], 0, 1);
    for (let stretch = await walker.next(); stretch; stretch = await walker.next()) {
      const l = stretch.listing;
      yield* this.merge(l.lines, l.sizes, l.flags, stretch.from, stretch.to);
    }
    while (this.oldLine !== null) {
      yield { kind: 'deleted', old: this.parseOld() };
      this.advanceOld();
    }
  }

  private *merge(lines: string[], sizes: number[], flags: number[], from: number, to: number): Generator<DeltaItem> {
    for (let i = from; i < to; i++) {
      const line = lines[i]!;
      const path = linePath(line);
      while (this.oldPath !== null && compareFields(this.oldPath, path) < 0) {
        yield* this.flushSame();
        yield { kind: 'deleted', old: this.parseOld() };
        this.advanceOld();
      }
      if (this.oldPath === path) {
        const oldLine = this.oldLine!;
        const prev = oldLine === line ? null : this.parseOld();
        this.advanceOld();
        if (prev === null) {
          this.keepSame(line, sizes[i]!, (flags[i]! & MULTI_LINK) !== 0 ? parseEntry(line, 'of the walk') : null);
          continue;
        }
        const cur = parseEntry(line, 'of the walk');
        // Lines differ in fields a delta ignores (device, inode, allocation): unchanged.
        if (sameEntry(prev, cur)) {
          this.keepSame(line, sizes[i]!, cur.type !== 'd' && cur.nlink > 1 ? cur : null);
          continue;
        }
        yield* this.flushSame();
        yield { kind: 'changed', cur, old: prev, line };
        continue;
      }
      yield* this.flushSame();
      yield { kind: 'new', cur: parseEntry(line, 'of the walk'), line };
    }
    yield* this.flushSame();
  }

  private keepSame(line: string, size: number, link: Entry | null): void {
    this.same.push(line);
    this.sameBytes += size;
    if (link) this.links.push(link);
  }

  private *flushSame(): Generator<DeltaItem> {
    if (this.same.length === 0) return;
    const item: DeltaItem = { kind: 'same', lines: this.same, bytes: this.sameBytes, links: this.links };
    this.same = [];
    this.sameBytes = 0;
    this.links = [];
    yield item;
  }
}
