// The local control plane's durable store: a handful of named collections
// of JSON records (sources, tasks, commands, …) kept in memory and made
// durable by an append-only journal plus periodic snapshots under the data
// directory. It knows nothing about SMS: the service layer decides what the
// records mean.
//
// On disk (DIR/store/):
//   journal.log    records [u32 length][u32 crc32][JSON {seq, ops}], each
//                  one transaction, fdatasync'ed before the commit resolves
//   snapshot.json  {version, seq, collections}, replaced atomically (through
//                  .snapshot.json.<12 hex>.tmp, which a kill -9 during
//                  compaction can leave behind: open() removes those)
// Loading reads the snapshot, then replays journal records with a larger
// seq. A record that is short, fails its checksum or does not parse is a
// torn tail left by a crash mid-append: it and everything after it are
// dropped and the file is truncated there. After a snapshot the journal is
// truncated; a crash between the two leaves records the snapshot already
// holds, which the seq check skips. So a kill -9 at any moment loses at most
// the transaction whose commit had not resolved yet.

import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { FerryError } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../platform/atomic-file.js';

export const COLLECTIONS = ['sources', 'tasks', 'commands', 'tokens', 'progress', 'meta'] as const;
export type Collection = (typeof COLLECTIONS)[number];

export type Op =
  | { op: 'put'; coll: Collection; id: string; value: unknown }
  | { op: 'del'; coll: Collection; id: string };

interface JournalRecord {
  seq: number;
  ops: Op[];
}

interface Snapshot {
  version: 1;
  seq: number;
  collections: Record<string, Record<string, unknown>>;
}

/** Hard cap on one journal record, so a corrupt length cannot make us allocate gigabytes. */
const MAX_RECORD = 64 * 1024 * 1024;
const HEADER = 8;

export interface StoreOptions {
  /** Compact (snapshot + truncate) once the journal is this big. Default 8 MiB. */
  compactBytes?: number;
  /** Called once when a journal write fails; the store refuses writes from then on. */
  onFailure?: (err: Error) => void;
}

export interface LoadReport {
  records: number;
  droppedBytes: number;
  snapshotSeq: number;
  /** Temporary snapshot files of an interrupted compaction, removed at open. */
  staleTemporaries: number;
}

/** The temporary name writeFileAtomic gives snapshot.json (`.<name>.<6 random bytes hex>.tmp`). */
const SNAPSHOT_TMP = /^\.snapshot\.json\.[0-9a-f]{12}\.tmp$/;

export class Store {
  private readonly colls = new Map<Collection, Map<string, unknown>>();
  private seq = 0;
  private journalBytes = 0;
  private fh: FileHandle | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private failed: Error | undefined;
  private compactAt: number;
  readonly loadReport: LoadReport;

  private constructor(
    private readonly dir: string,
    private readonly options: StoreOptions & { compactBytes: number },
    report: LoadReport,
  ) {
    this.loadReport = report;
    this.compactAt = options.compactBytes;
  }

  static async open(dir: string, options: StoreOptions = {}): Promise<Store> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const store = new Store(dir, { ...options, compactBytes: options.compactBytes ?? 8 * 1024 * 1024 }, { records: 0, droppedBytes: 0, snapshotSeq: 0, staleTemporaries: 0 });
    for (const c of COLLECTIONS) store.colls.set(c, new Map());
    store.removeStaleTemporaries();
    store.load();
    store.fh = await open(join(dir, 'journal.log'), 'a', 0o600);
    return store;
  }

  /**
   * A compaction killed before its rename leaves its temporary snapshot;
   * nothing reads those, so they go. Only our own pattern, only in our
   * directory: the caller holds the data directory's lock, so no other
   * store is compacting here.
   */
  private removeStaleTemporaries(): void {
    for (const name of readdirSync(this.dir)) {
      if (!SNAPSHOT_TMP.test(name)) continue;
      try {
        unlinkSync(join(this.dir, name));
        this.loadReport.staleTemporaries++;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }

  private load(): void {
    const snapPath = join(this.dir, 'snapshot.json');
    let snap: Snapshot | undefined;
    try {
      snap = JSON.parse(readFileSync(snapPath, 'utf8')) as Snapshot;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new FerryError('FERRY_STORE_CORRUPT', `cannot read the control-plane snapshot ${snapPath}: ${(e as Error).message}`);
      }
    }
    if (snap) {
      if (snap.version !== 1 || typeof snap.seq !== 'number' || typeof snap.collections !== 'object') {
        throw new FerryError('FERRY_STORE_CORRUPT', `${snapPath} is not a ferry control-plane snapshot (version ${String(snap.version)})`);
      }
      for (const [name, records] of Object.entries(snap.collections)) {
        const coll = this.colls.get(name as Collection);
        if (!coll) continue;
        for (const [id, value] of Object.entries(records)) coll.set(id, value);
      }
      this.seq = snap.seq;
      this.loadReport.snapshotSeq = snap.seq;
    }

    const journalPath = join(this.dir, 'journal.log');
    let buf: Buffer;
    try {
      buf = readFileSync(journalPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    let off = 0;
    while (off + HEADER <= buf.length) {
      const len = buf.readUInt32LE(off);
      const sum = buf.readUInt32LE(off + 4);
      if (len === 0 || len > MAX_RECORD || off + HEADER + len > buf.length) break;
      const payload = buf.subarray(off + HEADER, off + HEADER + len);
      if (crc32(payload) !== sum) break;
      let rec: JournalRecord;
      try {
        rec = JSON.parse(payload.toString('utf8')) as JournalRecord;
      } catch {
        break;
      }
      if (typeof rec.seq !== 'number' || !Array.isArray(rec.ops)) break;
      if (rec.seq > this.seq) {
        this.apply(rec.ops);
        this.seq = rec.seq;
        this.loadReport.records++;
      }
      off += HEADER + len;
    }
    if (off < buf.length) {
      // A torn or corrupt tail: drop it so new records follow the last good one.
      this.loadReport.droppedBytes = buf.length - off;
      const fd = openSync(journalPath, 'r+');
      try {
        ftruncateSync(fd, off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    this.journalBytes = off;
  }

  private apply(ops: Op[]): void {
    for (const o of ops) {
      const coll = this.colls.get(o.coll);
      if (!coll) continue;
      if (o.op === 'put') coll.set(o.id, o.value);
      else coll.delete(o.id);
    }
  }

  get<T>(coll: Collection, id: string): T | undefined {
    return this.colls.get(coll)!.get(id) as T | undefined;
  }

  values<T>(coll: Collection): T[] {
    return [...this.colls.get(coll)!.values()] as T[];
  }

  entries<T>(coll: Collection): [string, T][] {
    return [...this.colls.get(coll)!.entries()] as [string, T][];
  }

  /**
   * Runs `fn` alone (no other transaction in between), then makes the ops it
   * returns durable and visible. `fn` reads the current state and throws to
   * refuse; its result is returned once the ops are on disk.
   */
  transact<R>(fn: () => { ops: Op[]; result: R }): Promise<R> {
    const run = async (): Promise<R> => {
      if (this.failed) throw new FerryError('FERRY_STORE_FAILED', `the control-plane store is unusable after a write error: ${this.failed.message}`);
      if (this.closed) throw new FerryError('FERRY_STORE_CLOSED', 'the control-plane store is closed');
      const { ops, result } = fn();
      if (ops.length === 0) return result;
      const seq = this.seq + 1;
      const payload = Buffer.from(JSON.stringify({ seq, ops } satisfies JournalRecord), 'utf8');
      if (payload.length > MAX_RECORD) throw new FerryError('SMS.6014', 'the request is too large to store');
      const header = Buffer.alloc(HEADER);
      header.writeUInt32LE(payload.length, 0);
      header.writeUInt32LE(crc32(payload), 4);
      try {
        await this.fh!.write(Buffer.concat([header, payload]));
        await this.fh!.datasync();
      } catch (e) {
        // The journal may now hold a partial record; refuse further writes
        // rather than append after it. A restart truncates the torn tail.
        this.failed = e as Error;
        this.options.onFailure?.(this.failed);
        throw e;
      }
      this.seq = seq;
      this.journalBytes += HEADER + payload.length;
      this.apply(ops);
      if (this.journalBytes >= this.compactAt) {
        // The transaction is durable already; a failed snapshot (disk full)
        // only means a longer journal: try again after another threshold.
        await this.compact().then(
          () => (this.compactAt = this.options.compactBytes),
          () => (this.compactAt = this.journalBytes + this.options.compactBytes),
        );
      }
      return result;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }

  /** Writes a snapshot of everything and empties the journal. */
  private async compact(): Promise<void> {
    const collections: Record<string, Record<string, unknown>> = {};
    for (const [name, coll] of this.colls) collections[name] = Object.fromEntries(coll);
    const snap: Snapshot = { version: 1, seq: this.seq, collections };
    await writeFileAtomic(join(this.dir, 'snapshot.json'), JSON.stringify(snap), { mode: 0o600 });
    await this.fh!.truncate(0);
    await this.fh!.sync();
    this.journalBytes = 0;
  }

  /** Snapshot now (used on clean shutdown so the next start reads one file). */
  async checkpoint(): Promise<void> {
    const p = this.chain.then(() => (this.failed || this.closed ? undefined : this.compact()));
    this.chain = p.catch(() => {});
    await p;
  }

  async close(): Promise<void> {
    await this.chain;
    this.closed = true;
    await this.fh?.close();
    this.fh = undefined;
  }
}
