// The receiver's persistent manifest for one block target: what the target
// holds, as one canonical chunk hash per chunk (u64 BE), in a file that is
// read and written in ranges, never loaded whole. Two alternating header
// slots (the newer valid one wins) record the pass in progress, its
// committed frontier and the "dirty" range where writes may exist that no
// commit covers yet; after a crash that range is marked unknown.
//
// Layout: [slot A 4 KiB][slot B 4 KiB][entries: u64 BE per chunk]
// Entry values: 0 = all-zero chunk, 1 = unknown, else xxh64 (protocol/chunk-hash.ts).

import { open, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FerryError } from '../errors/ferry-error.js';
import { fsyncDir } from '../platform/atomic-file.js';

const SLOT_BYTES = 4096;
const ENTRIES_AT = 2 * SLOT_BYTES;

export const ManifestHeaderSchema = z.object({
  format: z.literal('ferry-block-manifest'),
  version: z.literal(1),
  seq: z.number().int().nonnegative(),
  chunkSize: z.number().int().positive(),
  sourceBytes: z.number().int().nonnegative(),
  passId: z.string(),
  /** Offset below which the pass `passId` is committed. */
  frontier: z.number().int().nonnegative(),
  dirtyLo: z.number().int().nonnegative(),
  dirtyHi: z.number().int().nonnegative(),
  completedPasses: z.number().int().nonnegative(),
  lastDigest: z.string(),
});
export type ManifestHeader = z.infer<typeof ManifestHeaderSchema>;

export class BlockManifest {
  readonly path: string;
  private fh: FileHandle;
  header: ManifestHeader;

  private constructor(path: string, fh: FileHandle, header: ManifestHeader) {
    this.path = path;
    this.fh = fh;
    this.header = header;
  }

  get chunkSize(): number {
    return this.header.chunkSize;
  }

  get chunkCount(): number {
    return Math.ceil(this.header.sourceBytes / this.header.chunkSize);
  }

  /** Length in bytes of chunk k (the last one may be short). */
  chunkLength(k: number): number {
    return Math.min(this.header.chunkSize, this.header.sourceBytes - k * this.header.chunkSize);
  }

  /** Opens an existing manifest; undefined when there is none (or it is unreadable). */
  static async openExisting(path: string): Promise<BlockManifest | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const slots = Buffer.alloc(ENTRIES_AT);
    await fh.read(slots, 0, ENTRIES_AT, 0);
    let best: ManifestHeader | undefined;
    for (const at of [0, SLOT_BYTES]) {
      const text = slots.subarray(at, at + SLOT_BYTES).toString('utf8').replace(/\0+$/, '').trim();
      if (!text) continue;
      try {
        const h = ManifestHeaderSchema.parse(JSON.parse(text));
        if (!best || h.seq > best.seq) best = h;
      } catch {
        /* torn or empty slot: the other one holds the last good header */
      }
    }
    if (!best) {
      await fh.close();
      return undefined;
    }
    return new BlockManifest(path, fh, best);
  }

  /**
   * Creates a fresh manifest. `knownZero` says the target is known to read
   * as zeros (a new or fully sparse image file): entries start at 0 (a sparse
   * file). Otherwise every entry starts unknown.
   */
  static async create(path: string, init: { chunkSize: number; sourceBytes: number; knownZero: boolean }): Promise<BlockManifest> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const fh = await open(path, 'w+', 0o600);
    const header: ManifestHeader = {
      format: 'ferry-block-manifest',
      version: 1,
      seq: 0,
      chunkSize: init.chunkSize,
      sourceBytes: init.sourceBytes,
      passId: '',
      frontier: 0,
      dirtyLo: 0,
      dirtyHi: 0,
      completedPasses: 0,
      lastDigest: '',
    };
    const m = new BlockManifest(path, fh, header);
    const n = m.chunkCount;
    await fh.truncate(ENTRIES_AT + n * 8);
    if (!init.knownZero) await m.fillUnknown(0, n);
    await m.writeHeader();
    await fsyncDir(dirname(path));
    return m;
  }

  private async fillUnknown(first: number, end: number): Promise<void> {
    const batch = 128 * 1024;
    const buf = Buffer.alloc(batch * 8);
    for (let i = 0; i < batch; i++) buf.writeBigUInt64BE(1n, i * 8);
    for (let k = first; k < end; k += batch) {
      const n = Math.min(batch, end - k);
      await this.fh.write(buf, 0, n * 8, ENTRIES_AT + k * 8);
    }
  }

  /** Persists the in-memory header into the older slot and fsyncs the file. */
  async writeHeader(): Promise<void> {
    this.header.seq += 1;
    const text = JSON.stringify(this.header);
    if (text.length >= SLOT_BYTES) throw new FerryError('FERRY_MANIFEST', 'manifest header too large');
    const slot = Buffer.alloc(SLOT_BYTES);
    slot.write(text, 'utf8');
    await this.fh.write(slot, 0, SLOT_BYTES, (this.header.seq % 2) * SLOT_BYTES);
    await this.fh.datasync();
  }

  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  /** Raw entries [first, first+count) clipped to the chunk count, u64 BE each. */
  async readEntries(first: number, count: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(count, this.chunkCount - first));
    const buf = Buffer.alloc(n * 8);
    if (n > 0) await this.fh.read(buf, 0, n * 8, ENTRIES_AT + first * 8);
    return buf;
  }

  /** Writes entries (not yet durable: call writeHeader, which fsyncs). */
  async writeEntries(entries: Map<number, bigint>): Promise<void> {
    if (entries.size === 0) return;
    const keys = [...entries.keys()].sort((a, b) => a - b);
    let i = 0;
    while (i < keys.length) {
      let j = i + 1;
      while (j < keys.length && keys[j] === keys[j - 1]! + 1 && j - i < 65536) j++;
      const buf = Buffer.allocUnsafe((j - i) * 8);
      for (let x = i; x < j; x++) buf.writeBigUInt64BE(entries.get(keys[x]!)!, (x - i) * 8);
      await this.fh.write(buf, 0, buf.length, ENTRIES_AT + keys[i]! * 8);
      i = j;
    }
  }

  /** Marks every chunk overlapping [lo, hi) unknown (not durable until writeHeader). */
  async markUnknown(lo: number, hi: number): Promise<void> {
    const cs = this.header.chunkSize;
    const first = Math.floor(lo / cs);
    const end = Math.min(this.chunkCount, Math.ceil(hi / cs));
    if (end > first) await this.fillUnknown(first, end);
  }

  /** sha256 over all entries, streamed. */
  async digest(): Promise<string> {
    const h = createHash('sha256');
    const batch = 128 * 1024;
    for (let k = 0; k < this.chunkCount; k += batch) h.update(await this.readEntries(k, batch));
    return h.digest('hex');
  }

  /** After an unclean stop: forget what the dirty range may hold. */
  async recoverDirty(): Promise<boolean> {
    const { dirtyLo, dirtyHi } = this.header;
    if (dirtyHi <= dirtyLo) return false;
    await this.markUnknown(dirtyLo, dirtyHi);
    this.header.dirtyLo = this.header.dirtyHi = 0;
    await this.writeHeader();
    return true;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
