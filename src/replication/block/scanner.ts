// The block scanner: reads the source front to back from the resume point
// (big reads), hashes it chunk by chunk, compares with the receiver's
// manifest, and queues what differs for the sender — changed runs as DATA
// (compression starts here, so it overlaps the sending), all-zero runs
// merged into ZERO markers, and marks that let the sender commit regions
// that needed nothing. It also keeps the pass digest over every chunk
// hash, taking the hashes below the resume point from the receiver.
//
// Must not touch: the channel, the window, commits (sender.ts).

import { createHash, type Hash } from 'node:crypto';
import type { ChunkHasher } from '../../protocol/chunk-hash.js';
import type { NativeReadHashed, NativeScanSame } from '../../platform/native-fs.js';
import { UNKNOWN_HASH } from '../../protocol/chunk-hash.js';
import { DATA_RUN_BYTES, MAX_ZERO_RUN_BYTES } from '../../protocol/sizes.js';
import type { SessionWaits } from '../session/waits.js';
import { chunkRead } from './chunker.js';
import { encodePayloadGoverned, encodePayloadGovernedInline, type CompressionGovernor, type Encoded } from '../../protocol/compress.js';
import type { ManifestCursor } from './manifest-cursor.js';
import { QUEUE_ITEMS, type Item, type SendQueue } from './send-queue.js';
import { blockReadReserve, FixedBufferSet, READ_AHEAD, READ_BYTES, SameStretch, SourceRead, readVolume, type ReadHashing } from './source-reader.js';
import type { BlockStats } from './progress.js';

type DataItem = Extract<Item, { kind: 'data' }>;

/**
 * A mark (where the sender may commit regions that needed no frames) at
 * least every this many bytes scanned: a quarter of the sender's
 * COMMIT_EVERY_SCANNED, so such a commit is never far behind.
 */
const MARK_EVERY_SCANNED = 64 * 1024 * 1024;
/** UNKNOWN_HASH's low 32 bits (its high ones are 0): an entry the receiver has no hash for. */
const UNKNOWN_LOW = Number(UNKNOWN_HASH);
/**
 * The first this many payload bytes of a session are compressed on the
 * scanner's thread; only a pass with more to send (a full copy, a large
 * delta) starts the compression pool's workers. A delta of a few tens of
 * MB then does not pay for booting two worker threads (see
 * encodePayloadGovernedInline).
 */
const INLINE_COMPRESS_BYTES = 64 * 1024 * 1024;

/**
 * A raw (incompressible) run of at most this many bytes, encoded inline, is
 * copied out of its read buffer, which then goes back to the pool at once.
 * Below glibc's mmap threshold (128 KiB), so the copy comes from memory
 * malloc reuses. Measured (issue 14, warm delta after 500 × 16 KiB writes
 * in 1 GiB, /usr/bin/time and perf on the 2-core VM): with every DATA item
 * holding its 4 MiB read until the frame was flushed, a delta pass touched
 * 7 of the 8 read buffers instead of the no-change pass's 3, about 4,100
 * more page faults (7,181 against 3,096 in pread's copy), 25–30 ms of
 * CPU on this VM, where each fault costs several µs.
 */
const COPY_RAW_BELOW = 128 * 1024;

/**
 * A DATA item encoded on the scanner's thread. The read buffer is held
 * only when the payload points into it (a raw run larger than
 * COPY_RAW_BELOW); an lz4 payload is a buffer of its own.
 */
function inlineItem(read: SourceRead, raw: Buffer, offset: number, hashes: bigint[], frontier: number, governor: CompressionGovernor): DataItem {
  const base = { kind: 'data' as const, offset, rawLength: raw.length, hashes, frontier, ready: true };
  let enc: Encoded;
  try {
    enc = encodePayloadGovernedInline(raw, governor);
  } catch (e) {
    // Rejects, as the pool's would; the sender releases the (unheld) read.
    const encoded = Promise.reject(e as Error);
    encoded.catch(() => {});
    return { ...base, read: unheld(offset, raw), encoded };
  }
  if (enc.payload !== raw) return { ...base, read: unheld(offset, enc.payload), encoded: Promise.resolve(enc) };
  if (raw.length <= COPY_RAW_BELOW) {
    const copy = Buffer.from(raw);
    return { ...base, read: unheld(offset, copy), encoded: Promise.resolve({ codec: enc.codec, payload: copy }) };
  }
  read.retain();
  return { ...base, read, encoded: Promise.resolve(enc) };
}

/** A stand-in read for a payload that holds no pooled buffer: releasing it does nothing. */
function unheld(offset: number, data: Buffer): SourceRead {
  return new SourceRead(offset, data, () => {});
}

export interface ScannerParts {
  source: string;
  size: number;
  /** The receiver's chunk size. */
  chunkSize: number;
  /** Where this session starts (a multiple of the read size). */
  resumeFrom: number;
  cursor: ManifestCursor;
  hasher: ChunkHasher;
  /** The native module's read-and-hash (source-reader.ts, ReadHashing); without it the hasher hashes each read here. */
  readHashed?: NativeReadHashed;
  /** With readHashed: unchanged stretches scanned in one job each (source-reader.ts, Stretches). */
  scanSame?: NativeScanSame;
  governor: CompressionGovernor;
  queue: SendQueue;
  waits: SessionWaits;
  stats: BlockStats;
  signal: AbortSignal | undefined;
  /** Called after each read (throttled by the caller). */
  onProgress: () => void;
}

export class Scanner {
  /** Set once the whole volume is queued (the final mark included). */
  done = false;
  /** sha256 over every chunk hash of the volume, in order: the pass digest. */
  readonly digest: Hash = createHash('sha256');
  private readonly p: ScannerParts;
  // Read buffers: one being scanned, the reads ahead, the rest held by frames waiting to be encoded.
  // Kept between passes (blockReadReserve): the set is closed when the scan ends, however it ends.
  private readonly pool = new FixedBufferSet(QUEUE_ITEMS + READ_AHEAD + 3, READ_BYTES, blockReadReserve);
  /** All-zero chunks seen and not yet queued, merged while they continue each other. */
  private zeroRun: { offset: number; length: number } | undefined;

  constructor(parts: ScannerParts) {
    this.p = parts;
  }

  private stopped(): boolean {
    return !!this.p.signal?.aborted || this.p.waits.error !== undefined;
  }

  async run(): Promise<void> {
    try {
      await this.scan();
    } finally {
      this.pool.close();
    }
  }

  private async scan(): Promise<void> {
    const { source, size, chunkSize: cs, resumeFrom, cursor, hasher, governor, queue, stats } = this.p;
    // Chunks below the resume point were committed earlier in this pass: their hashes come from the receiver.
    for (let k = 0; k * cs < resumeFrom; ) {
      const { entries, index } = await cursor.locate(k);
      const upto = Math.min(resumeFrom / cs, k - index + entries.length / 8);
      this.digest.update(entries.subarray(index * 8, (index + (upto - k)) * 8));
      k = upto;
    }
    stats.doneBytes = resumeFrom;
    const payloadAtStart = stats.payloadBytes;
    let lastMark = resumeFrom;
    const hashing: ReadHashing | undefined = this.p.readHashed ? { chunkSize: cs, readHashed: this.p.readHashed } : undefined;
    if (hashing && this.p.scanSame) {
      hashing.stretches = { scanSame: this.p.scanSame, expected: (offset, length) => this.expected(offset, length), ...(this.p.signal ? { signal: this.p.signal } : {}) };
    }
    for await (const read of readVolume(source, resumeFrom, size, this.pool, READ_BYTES, hashing)) {
      if (this.stopped()) {
        if (read instanceof SourceRead) read.release();
        break;
      }
      if (read instanceof SameStretch) {
        // Every chunk as the receiver has it: nothing to send; its hashes are the receiver's entries.
        stats.bytesRead += read.length;
        this.digest.update(read.expected);
        await this.flushZero(read.offset);
        let zeroBytes = 0;
        for (let i = 0; i * 8 < read.expected.length; i++) {
          if (read.expected.readUInt32BE(i * 8) === 0 && read.expected.readUInt32BE(i * 8 + 4) === 0) zeroBytes += Math.min(cs, read.length - i * cs);
        }
        stats.bytesSkippedZero += zeroBytes;
        stats.bytesSkippedUnchanged += read.length - zeroBytes;
        stats.doneBytes += read.length;
        lastMark = await this.mark(read.offset + read.length, lastMark);
        this.p.onProgress();
        continue;
      }
      stats.bytesRead += read.data.length;
      const { entries, index } = await cursor.locate(read.offset / cs);
      const chunked = chunkRead(read.data, read.offset, cs, (i) => entries.readBigUInt64BE((index + i) * 8), hasher, DATA_RUN_BYTES, read.hashes);
      this.digest.update(chunked.hashes);
      stats.bytesSkippedZero += chunked.zeroBytes;
      for (const run of chunked.runs) {
        const end = run.offset + run.length;
        if (run.kind === 'same') {
          await this.flushZero(run.offset);
          stats.bytesSkippedUnchanged += run.length - run.zeroBytes;
          stats.doneBytes += run.length;
        } else if (run.kind === 'zero') {
          const z = this.zeroRun;
          if (z && z.offset + z.length === run.offset && z.length + run.length <= MAX_ZERO_RUN_BYTES) z.length += run.length;
          else {
            await this.flushZero(run.offset);
            this.zeroRun = { offset: run.offset, length: run.length };
          }
        } else {
          await this.flushZero(run.offset);
          const raw = read.data.subarray(run.offset - read.offset, end - read.offset);
          stats.payloadBytes += raw.length;
          const inline = stats.payloadBytes - payloadAtStart <= INLINE_COMPRESS_BYTES;
          let item: DataItem;
          if (inline) item = inlineItem(read, raw, run.offset, run.hashes, end, governor);
          else {
            read.retain();
            item = { kind: 'data', offset: run.offset, rawLength: raw.length, hashes: run.hashes, frontier: end, read, encoded: encodePayloadGoverned(raw, governor), ready: false };
            void item.encoded.then(
              () => (item.ready = true),
              () => {},
            );
          }
          await queue.push(item);
        }
      }
      read.release();
      lastMark = await this.mark(read.offset + read.data.length, lastMark);
      this.p.onProgress();
    }
    if (this.stopped()) return;
    await this.flushZero(size);
    await queue.push({ kind: 'mark', frontier: size, final: true });
    this.done = true;
  }

  /** A mark at `end` when the scan has gone MARK_EVERY_SCANNED past the last one; the last mark's frontier. */
  private async mark(end: number, lastMark: number): Promise<number> {
    if (end - lastMark < MARK_EVERY_SCANNED) return lastMark;
    await this.flushZero(end);
    await this.p.queue.push({ kind: 'mark', frontier: end, final: false });
    return end;
  }

  /**
   * The receiver's entries for [offset, offset + length) when a stretch there can be scanned (source-reader.ts,
   * Stretches): every one known. readVolume asks only once the scan has taken every read before `offset`, so the
   * cursor goes forward (ManifestCursor.slice).
   */
  private async expected(offset: number, length: number): Promise<Buffer | undefined> {
    const cs = this.p.chunkSize;
    const entries = await this.p.cursor.slice(offset / cs, Math.ceil(length / cs));
    if (!entries) return undefined;
    for (let i = 0; i < entries.length; i += 8) {
      if (entries.readUInt32BE(i) === 0 && entries.readUInt32BE(i + 4) === UNKNOWN_LOW) return undefined;
    }
    return entries;
  }

  /** Queues the pending zero run, if any; `frontier` is how far the volume is accounted for once it is sent. */
  private async flushZero(frontier: number): Promise<void> {
    const z = this.zeroRun;
    if (!z) return;
    this.zeroRun = undefined;
    await this.p.queue.push({ kind: 'zero', offset: z.offset, length: z.length, frontier });
  }
}
