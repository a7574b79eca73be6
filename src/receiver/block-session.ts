// The receiver half of block replication: one session writes one target
// (block device or image file). Every DATA frame is decompressed and each
// chunk's hash checked before anything is written; a bad frame is refused
// with a NACK and never written. Writes are positioned, one at a time, and
// bypass the page cache (direct I/O from page-aligned pooled buffers) where
// the target allows; at each COMMIT the target is fsynced, then the manifest
// entries, then the header — and only then the ACK goes out. Writes not yet
// covered by a commit always lie in the manifest's persisted dirty range, so
// a crash loses nothing silently. A failed write (a full file system:
// SMS.1315) ends this session only; its range stays in the dirty range, so
// the next session re-hashes it and the manifest stays true. ZERO frames
// cover at most MAX_ZERO_RUN_BYTES each and at most MAX_ZERO_FRAMES wait at
// once; on image files their runs become holes (target-writer.ts).

import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, errorMessage } from '../errors/ferry-error.js';
import { sizeOfPath } from '../platform/device-size-linux.js';
import {
  Codec,
  CommitSchema,
  EndSchema,
  FrameType,
  MAX_ZERO_RUN_BYTES,
  ManifestRequestSchema,
  decodeDataFrame,
  decodeJson,
  decodeZeroFrame,
  encodeJsonFrame,
  encodeManifestFrame,
  frameTypeName,
  type DataFrame,
  type RawFrame,
} from '../protocol/frames.js';
import { loadChunkHasher, type ChunkHasher } from '../protocol/chunk-hash.js';
import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from '../protocol/sizes.js';
import { lz4Decompress } from '../protocol/lz4-block.js';
import { BlockManifest } from './block-manifest.js';
import { alignedBuffers } from './receive-buffers.js';
import { TargetWriter } from './target-writer.js';
import { isTargetFull, targetWriteError } from './target-errors.js';
import type { KindSession, SessionContext, SessionKindHandler } from './session-kind.js';

/** How far past a write the dirty range is reserved, so that sequential writes rarely need a header fsync. */
const DIRTY_RESERVE = 256 * 1024 * 1024;
const PAUSE_ABOVE = 24 * 1024 * 1024;
const RESUME_BELOW = 8 * 1024 * 1024;
/** ZERO frames waiting to be applied, at most (the socket is paused above this: each one is cheap to send). */
const MAX_ZERO_FRAMES = 32;
/**
 * MANIFEST_REQUESTs waiting for their answer, at most (the socket is paused above this). Without it, a peer
 * that floods requests and never reads the answers was held back only once an answer filled the socket: on a
 * busy machine the receiver had queued the whole flood by then (a million requests: 463 MB of RSS in CI).
 */
const MAX_PENDING_REQUESTS = 64;

interface Range {
  lo: number;
  hi: number;
}

interface Batch {
  writes: Promise<void>[];
  entries: Map<number, bigint>;
  ranges: Range[];
}

function newBatch(): Batch {
  return { writes: [], entries: new Map(), ranges: [] };
}

export function validChunkSize(n: number | undefined): number {
  if (n === undefined) return DEFAULT_CHUNK_SIZE;
  if (n < MIN_CHUNK_SIZE || n > MAX_CHUNK_SIZE || (n & (n - 1)) !== 0) {
    throw new FerryError('FERRY_FRAME_MALFORMED', `chunk size ${n} must be a power of two between ${MIN_CHUNK_SIZE / 1024} KiB and ${MAX_CHUNK_SIZE / (1024 * 1024)} MiB`);
  }
  return n;
}

export const blockKind: SessionKindHandler = {
  async open(ctx: SessionContext): Promise<KindSession> {
    const s = new BlockSession(ctx);
    await s.start();
    return s;
  },
};

class BlockSession implements KindSession {
  welcome: KindSession['welcome'] = { pass: 'full', resumeFrom: 0 };
  private readonly ctx: SessionContext;
  private hasher!: ChunkHasher;
  private target!: FileHandle;
  /** Writes data to the target in order (see target-writer.ts). */
  private writer!: TargetWriter;
  /** Whether this session may decode into aligned buffers for direct writes. */
  private direct = false;
  private manifest!: BlockManifest;
  private sourceBytes = 0;
  private chunkSize = DEFAULT_CHUNK_SIZE;

  /** Frame work in arrival order (writes are started here, not awaited). */
  private queue: Promise<void> = Promise.resolve();
  /** Commits, one after another, overlapping with new writes. */
  private commits: Promise<void> = Promise.resolve();
  /** Header writes, one after another. */
  private headerLock: Promise<void> = Promise.resolve();
  private batch = newBatch();
  /** Ranges written but not yet covered by a completed commit. */
  private uncommitted: Range[] = [];
  /** Chunk offsets of refused frames not yet rewritten: the frontier stays below them. */
  private readonly refused = new Set<number>();
  private pendingBytes = 0;
  private pendingZeroFrames = 0;
  private pendingRequests = 0;
  private paused = false;
  private failed = false;
  private closing: Promise<void> | undefined;

  constructor(ctx: SessionContext) {
    this.ctx = ctx;
  }

  async start(): Promise<void> {
    const { hello, target, dataDir } = this.ctx;
    if (hello.sizeBytes === undefined) throw new FerryError('FERRY_FRAME_MALFORMED', 'block HELLO needs sizeBytes');
    this.sourceBytes = hello.sizeBytes;
    this.hasher = await loadChunkHasher();

    let knownZero = false;
    let imageFile = true;
    let targetBytes: number;
    try {
      const st = await stat(target.path);
      targetBytes = await sizeOfPath(target.path, st);
      knownZero = st.isFile() && st.blocks === 0;
      imageFile = st.isFile();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const fh = await open(target.path, 'wx', 0o600);
      await fh.truncate(this.sourceBytes);
      await fh.close();
      targetBytes = this.sourceBytes;
      knownZero = true;
    }
    if (targetBytes < this.sourceBytes) {
      throw new FerryError(
        'SMS.1315',
        `Insufficient free space on target partition ${target.name}: the target holds ${targetBytes} bytes, the source has ${this.sourceBytes}`,
      );
    }

    const manifestPath = join(dataDir, 'targets', target.name, 'block.manifest');
    this.target = await open(target.path, 'r+');
    // Data is written with direct I/O where possible: no page cache to fill and write back
    // (the copy and the writeback cost the receiver more CPU than anything else). The
    // fdatasync at each commit makes it durable just the same.
    const direct = await open(target.path, constants.O_RDWR | constants.O_DIRECT).catch(() => undefined);
    this.direct = direct !== undefined;
    this.writer = new TargetWriter(
      this.target,
      direct,
      target.name,
      () => {
        this.direct = false;
        this.ctx.log.warn({ target: target.name }, 'the target refuses direct I/O: writing through the page cache');
      },
      {
        punchHoles: imageFile,
        onPunchRefused: (why) => this.ctx.log.warn({ target: target.name, why }, 'the target refuses hole punching: zero runs are written as zeros'),
      },
    );
    let m = await BlockManifest.openExisting(manifestPath);
    if (m) {
      if (m.header.sourceBytes === this.sourceBytes && m.header.dirtyHi > m.header.dirtyLo) {
        const { dirtyLo, dirtyHi } = m.header;
        const changed = await this.recover(m);
        this.ctx.log.warn(
          { target: target.name, dirtyLo, dirtyHi, changed },
          'recovered from an unclean stop: the range written since the last commits was re-read and its manifest entries re-hashed',
        );
      }
      if (m.header.sourceBytes !== this.sourceBytes) {
        this.ctx.log.warn({ target: target.name, was: m.header.sourceBytes, now: this.sourceBytes }, 'source size changed: manifest reset');
        await m.close();
        m = await BlockManifest.create(manifestPath, { chunkSize: m.header.chunkSize, sourceBytes: this.sourceBytes, knownZero: false });
      }
    } else {
      m = await BlockManifest.create(manifestPath, { chunkSize: validChunkSize(hello.chunkSize), sourceBytes: this.sourceBytes, knownZero });
    }
    this.manifest = m;
    this.chunkSize = m.chunkSize;

    const samePass = m.header.passId === hello.passId;
    if (!samePass) {
      m.header.passId = hello.passId;
      m.header.frontier = 0;
    }
    this.welcome = {
      pass: m.header.completedPasses > 0 ? 'delta' : 'full',
      resumeFrom: samePass ? m.header.frontier : 0,
      chunkSize: this.chunkSize,
      targetBytes,
    };
  }

  onFrame(frame: RawFrame): void {
    if (this.failed) return;
    try {
      switch (frame.type) {
        case FrameType.MANIFEST_REQUEST: {
          const req = decodeJson(ManifestRequestSchema, frame.type, frame.body);
          this.pendingRequests += 1;
          this.maybePause();
          this.enqueue(async () => {
            try {
              const entries = await this.manifest.readEntries(req.first, req.count);
              await this.ctx.channel.send(encodeManifestFrame(req.first, entries));
            } finally {
              this.pendingRequests -= 1;
              this.maybeResume();
            }
          });
          return;
        }
        case FrameType.DATA:
          this.onData(frame.body, frame.release ?? (() => {}));
          return;
        case FrameType.ZERO: {
          const z = decodeZeroFrame(frame.body);
          if (z.length > MAX_ZERO_RUN_BYTES) {
            throw new FerryError('FERRY_FRAME_MALFORMED', `a ZERO frame of ${z.length} bytes at ${z.offset}: one frame covers at most ${MAX_ZERO_RUN_BYTES} bytes`);
          }
          this.checkRange(z.offset, z.length);
          this.pendingZeroFrames += 1;
          this.maybePause();
          this.enqueue(() => this.startWrite({ lo: z.offset, hi: z.offset + z.length }, undefined, new Map(), z.seq));
          return;
        }
        case FrameType.COMMIT: {
          const c = decodeJson(CommitSchema, frame.type, frame.body);
          this.enqueue(async () => {
            this.startCommit(c.frontier, c.id);
          });
          return;
        }
        case FrameType.END: {
          const end = decodeJson(EndSchema, frame.type, frame.body);
          this.enqueue(() => this.finish(end.digest, end.sizeBytes, end.verify));
          return;
        }
        default:
          throw new FerryError('FERRY_FRAME_UNKNOWN', `unexpected frame type ${frameTypeName(frame.type)} in a block session`);
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.ctx.fail(isTargetFull(e) ? targetWriteError(e, this.ctx.target.name, 'writing the target or its manifest') : e);
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((e: unknown) => this.fail(e));
  }

  private checkRange(offset: number, length: number): void {
    const cs = this.chunkSize;
    if (offset % cs !== 0) throw new FerryError('FERRY_FRAME_MALFORMED', `offset ${offset} is not a multiple of the chunk size ${cs}`);
    if (offset + length > this.sourceBytes) {
      throw new FerryError('FERRY_WRITE_OUT_OF_RANGE', `a write of ${length} bytes at ${offset} ends past the volume (${this.sourceBytes} bytes)`);
    }
    if (length % cs !== 0 && offset + length !== this.sourceBytes) {
      throw new FerryError('FERRY_FRAME_MALFORMED', `length ${length} is not a multiple of the chunk size and does not end the volume`);
    }
  }

  /** `release` (a pooled frame buffer) is called once the body is no longer needed. */
  private onData(body: Buffer, release: () => void): void {
    let f: DataFrame;
    try {
      f = decodeDataFrame(body);
      this.checkRange(f.offset, f.rawLength);
      const chunks = Math.ceil(f.rawLength / this.chunkSize);
      if (f.hashes.length !== chunks) throw new FerryError('FERRY_FRAME_MALFORMED', `DATA frame carries ${f.hashes.length} hashes for ${chunks} chunks`);
    } catch (e) {
      release();
      throw e;
    }
    this.pendingBytes += f.rawLength;
    this.maybePause();
    // Decoded (or copied) at once into an aligned buffer when one is free, for a direct write;
    // checked and written in arrival order.
    let raw: Buffer | undefined;
    let error: string | undefined;
    let done = release;
    try {
      const aligned = this.direct ? alignedBuffers.take(f.rawLength) : undefined;
      if (f.codec === Codec.LZ4) {
        try {
          raw = lz4Decompress(f.payload, f.rawLength, aligned?.buf);
        } finally {
          release();
        }
        done = aligned ? aligned.release : () => {};
      } else if (aligned && f.payload.length === f.rawLength) {
        aligned.buf.set(f.payload);
        release();
        raw = aligned.buf;
        done = aligned.release;
      } else {
        aligned?.release();
        raw = f.payload;
      }
      if (raw.length !== f.rawLength) throw new Error(`decoded ${raw.length} bytes, expected ${f.rawLength}`);
    } catch (e) {
      raw = undefined;
      error = errorMessage(e);
    }
    this.enqueue(async () => {
      if (!raw) {
        done();
        this.onWritten(f.rawLength);
        await this.refuse(f.seq, f.offset, 'FERRY_CHUNK_CORRUPT', `DATA frame at ${f.offset} does not decode: ${error}`);
        return;
      }
      const cs = this.chunkSize;
      const entries = new Map<number, bigint>();
      const first = f.offset / cs;
      for (let i = 0; i < f.hashes.length; i++) {
        const h = this.hasher.hash(raw.subarray(i * cs, Math.min((i + 1) * cs, raw.length)));
        if (h !== f.hashes[i]) {
          done();
          this.onWritten(f.rawLength);
          await this.refuse(f.seq, f.offset, 'FERRY_CHUNK_HASH', `chunk at ${f.offset + i * cs} does not match its hash; the frame was not written`);
          return;
        }
        entries.set(first + i, h);
      }
      await this.startWrite({ lo: f.offset, hi: f.offset + f.rawLength }, raw, entries, f.seq, done);
    });
  }

  private async refuse(seq: number, offset: number, code: string, message: string): Promise<void> {
    this.ctx.log.warn({ target: this.ctx.target.name, seq, offset, code }, message);
    this.refused.add(offset);
    await this.ctx.channel.send(encodeJsonFrame(FrameType.NACK, { seq, code, message }));
  }

  private maybePause(): void {
    if (!this.paused && (this.pendingBytes > PAUSE_ABOVE || this.pendingZeroFrames > MAX_ZERO_FRAMES || this.pendingRequests > MAX_PENDING_REQUESTS)) {
      this.paused = true;
      this.ctx.channel.pauseReading('pending-writes');
    }
  }

  private onWritten(bytes: number): void {
    this.pendingBytes -= bytes;
    this.maybeResume();
  }

  private maybeResume(): void {
    if (this.paused && this.pendingBytes < RESUME_BELOW && this.pendingZeroFrames <= MAX_ZERO_FRAMES / 2 && this.pendingRequests <= MAX_PENDING_REQUESTS / 2) {
      this.paused = false;
      this.ctx.channel.resumeReading('pending-writes');
    }
  }

  /** Reserves the dirty range (durably) if needed, then starts the write without waiting for it. */
  /** `done` is called once `data` is written (or the write failed): the buffer may then be reused. */
  private async startWrite(range: Range, data: Buffer | undefined, entries: Map<number, bigint>, _seq: number, done?: () => void): Promise<void> {
    this.uncommitted.push(range);
    const h = this.manifest.header;
    if (!(h.dirtyLo <= range.lo && range.hi <= h.dirtyHi && h.dirtyHi > h.dirtyLo)) {
      await this.withHeader(() => {
        let lo = range.lo;
        let hi = Math.min(range.hi + DIRTY_RESERVE, Math.max(range.hi, this.sourceBytes));
        for (const r of this.uncommitted) {
          lo = Math.min(lo, r.lo);
          hi = Math.max(hi, r.hi);
        }
        h.dirtyLo = lo;
        h.dirtyHi = hi;
      });
    }
    const cs = this.chunkSize;
    let write: Promise<void>;
    if (data) {
      const bytes = data.length;
      // (pendingBytes was counted when the frame arrived.)
      write = this.writer.write(data, range.lo).then(
        () => {
          done?.();
          this.onWritten(bytes);
        },
        (e: unknown) => {
          done?.();
          this.onWritten(bytes);
          throw e;
        },
      );
    } else {
      write = this.writer.zeros(range.lo, range.hi).finally(() => {
        this.pendingZeroFrames -= 1;
        this.onWritten(0);
      });
      for (let k = range.lo / cs; k * cs < range.hi; k++) entries.set(k, 0n);
    }
    // A failed write ends the session at once (not at the next commit, and never as an
    // unhandled rejection that would take the whole receiver down); the commit that
    // waits for it fails too, so its range stays dirty and its entries unwritten.
    write.catch((e: unknown) => this.fail(targetWriteError(e, this.ctx.target.name, `writing ${range.hi - range.lo} bytes at offset ${range.lo}`)));
    this.batch.writes.push(write);
    for (const [k, v] of entries) this.batch.entries.set(k, v);
    this.batch.ranges.push(range);
    for (const o of this.refused) if (o >= range.lo && o < range.hi) this.refused.delete(o);
    if (this.batch.entries.size >= 64 * 1024) this.startCommit(undefined, undefined);
  }

  private withHeader(mutate: () => void): Promise<void> {
    const run = this.headerLock.then(async () => {
      mutate();
      await this.manifest.writeHeader();
    });
    this.headerLock = run.catch(() => {});
    return run;
  }

  /** Commits everything written so far; sends ACK `id` when given. */
  private startCommit(frontier: number | undefined, ackId: number | undefined): Promise<void> {
    const b = this.batch;
    this.batch = newBatch();
    const run = this.commits.then(async () => {
      await Promise.all(b.writes);
      // Data first, then what the manifest says about it.
      if (b.writes.length > 0) await this.target.datasync();
      if (b.entries.size > 0) await this.manifest.writeEntries(b.entries);
      let persisted = 0;
      // One fsync of the manifest file makes the entries and the frontier durable. The dirty
      // range is not shrunk here: after a crash, recovery re-hashes it (see recover()).
      await this.withHeader(() => {
        const h = this.manifest.header;
        if (frontier !== undefined) {
          let f = frontier;
          for (const o of this.refused) f = Math.min(f, o);
          h.frontier = Math.max(h.frontier, Math.min(f, this.sourceBytes));
        }
        persisted = h.frontier;
      });
      for (const r of b.ranges) {
        const i = this.uncommitted.indexOf(r);
        if (i >= 0) this.uncommitted.splice(i, 1);
      }
      if (ackId !== undefined) await this.ctx.channel.send(encodeJsonFrame(FrameType.ACK, { id: ackId, frontier: persisted }));
    });
    this.commits = run.catch((e: unknown) => this.fail(e));
    return run;
  }

  private async finish(agentDigest: string, sizeBytes: number, verify: boolean): Promise<void> {
    if (sizeBytes !== this.sourceBytes) throw new FerryError('FERRY_FRAME_MALFORMED', `END for ${sizeBytes} bytes, the session is for ${this.sourceBytes}`);
    // Frames after the agent's last COMMIT (none, from a well-behaved agent) are committed first; an
    // empty batch needs no commit of its own: its header write would be one more fsync before DONE.
    const b = this.batch;
    if (b.writes.length > 0 || b.entries.size > 0 || b.ranges.length > 0) await this.startCommit(undefined, undefined);
    await this.commits;
    let mismatched = 0;
    if (verify) mismatched = await this.verifyTarget();
    const digest = await this.manifest.digest();
    const agreed = digest === agentDigest && mismatched === 0;
    await this.withHeader(() => {
      const h = this.manifest.header;
      if (agreed) {
        h.completedPasses += 1;
        h.lastDigest = digest;
        h.frontier = this.sourceBytes;
      }
      h.dirtyLo = h.dirtyHi = 0;
    });
    this.ctx.log.info({ target: this.ctx.target.name, agreed, verified: verify, mismatched }, 'pass finished');
    await this.ctx.channel.send(encodeJsonFrame(FrameType.DONE, { digest, verified: verify && mismatched === 0, mismatchedChunks: mismatched }));
  }

  /**
   * After a crash: the dirty range may hold writes no commit recorded (or
   * commits whose manifest fsync did not finish). Re-hash what the target
   * really holds there, so the manifest is exact again: acknowledged data is
   * kept, anything else is what it is. Returns the number of entries changed.
   */
  private async recover(m: BlockManifest): Promise<number> {
    const cs = m.chunkSize;
    const n = m.chunkCount;
    const per = Math.max(1, Math.floor((4 * 1024 * 1024) / cs));
    const buf = Buffer.allocUnsafe(per * cs);
    const first = Math.floor(m.header.dirtyLo / cs);
    const end = Math.min(n, Math.ceil(m.header.dirtyHi / cs));
    let changed = 0;
    for (let k = first; k < end; k += per) {
      const count = Math.min(per, end - k);
      const bytes = Math.min(count * cs, m.header.sourceBytes - k * cs);
      const { bytesRead } = await this.target.read(buf, 0, bytes, k * cs);
      const have = await m.readEntries(k, count);
      const fix = new Map<number, bigint>();
      for (let i = 0; i < count; i++) {
        const lo = i * cs;
        const hi = Math.min(lo + cs, bytes);
        const h = hi <= bytesRead ? this.hasher.hash(buf.subarray(lo, hi)) : 1n;
        if (h !== have.readBigUInt64BE(i * 8)) fix.set(k + i, h);
      }
      changed += fix.size;
      await m.writeEntries(fix);
    }
    await m.sync();
    m.header.dirtyLo = m.header.dirtyHi = 0;
    await m.writeHeader();
    return changed;
  }

  /** Re-reads the target and compares every chunk with the manifest; mismatches become unknown. */
  private async verifyTarget(): Promise<number> {
    const cs = this.chunkSize;
    const per = Math.max(1, Math.floor((4 * 1024 * 1024) / cs));
    const buf = Buffer.allocUnsafe(per * cs);
    const bad = new Map<number, bigint>();
    const n = this.manifest.chunkCount;
    for (let k = 0; k < n; k += per) {
      const count = Math.min(per, n - k);
      const bytes = Math.min(count * cs, this.sourceBytes - k * cs);
      const { bytesRead } = await this.target.read(buf, 0, bytes, k * cs);
      if (bytesRead !== bytes) throw new FerryError('SMS.0805', `short read from target ${this.ctx.target.name} at ${k * cs}`);
      const entries = await this.manifest.readEntries(k, count);
      for (let i = 0; i < count; i++) {
        const h = this.hasher.hash(buf.subarray(i * cs, Math.min((i + 1) * cs, bytes)));
        if (h !== entries.readBigUInt64BE(i * 8)) bad.set(k + i, 1n);
      }
    }
    if (bad.size > 0) {
      this.ctx.log.error({ target: this.ctx.target.name, chunks: bad.size }, 'consistency check: target differs from manifest');
      await this.manifest.writeEntries(bad);
      await this.manifest.sync();
    }
    return bad.size;
  }

  close(reason: Error): Promise<void> {
    this.closing ??= (async () => {
      this.failed = true;
      this.ctx.log.debug({ target: this.ctx.target.name, reason: reason.message }, 'block session closing');
      // Zero runs still queued are dropped (their ranges stay dirty): a stop never waits on them.
      this.writer?.stop();
      await this.queue.catch(() => {});
      // Everything written was verified: make it durable so nothing is sent twice.
      await this.startCommit(undefined, undefined).catch((e: unknown) => {
        this.ctx.log.error({ target: this.ctx.target.name, err: errorMessage(e) }, 'final commit failed; the dirty range stays marked');
      });
      await this.commits.catch(() => {});
      if (this.uncommitted.length === 0) {
        await this.withHeader(() => {
          this.manifest.header.dirtyLo = this.manifest.header.dirtyHi = 0;
        }).catch(() => {});
      }
      await this.writer?.close();
      await this.target.close().catch(() => {});
      await this.manifest.close().catch(() => {});
    })();
    return this.closing;
  }
}
