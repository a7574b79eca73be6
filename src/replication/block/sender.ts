// The block sender: takes the scanner's items in order and puts them on the
// wire as DATA and ZERO frames — numbered, within the window of
// unacknowledged bytes, paced by the rate gate — with COMMITs when the
// pacer says, when the window would otherwise stall, and at marks. Frames
// the receiver refused are rebuilt from the source and sent again first.
//
// Must not touch: scanning and hashing (scanner.ts), the receiver's frames
// (replies.ts), the end of the pass (pass.ts).

import { open } from 'node:fs/promises';
import { FerryError } from '../../errors/ferry-error.js';
import type { FrameChannel } from '../../protocol/channel.js';
import type { ChunkHasher } from '../../protocol/chunk-hash.js';
import { FrameType, encodeDataFrameParts, encodeJsonFrame, encodeZeroFrame, setFrameSeq } from '../../protocol/frames.js';
import type { ByteGate } from '../types.js';
import type { CommitPacer } from '../session/commit-pacer.js';
import type { SessionWaits } from '../session/waits.js';
import { encodePayloadGoverned, type CompressionGovernor } from '../../protocol/compress.js';
import type { InFlight, Sent } from './in-flight.js';
import type { BlockProgress, BlockStats } from './progress.js';
import type { SendQueue } from './send-queue.js';
import type { WireMeter } from './wire-meter.js';

/**
 * A commit once this much volume was accounted for without frames (unchanged
 * or zero regions), and after a ZERO frame of half as much: a cut then does
 * not make the next session rescan it.
 */
export const COMMIT_EVERY_SCANNED = 256 * 1024 * 1024;

export interface SenderParts {
  source: string;
  chunkSize: number;
  /** Where this session starts: the volume is accounted for up to here. */
  resumeFrom: number;
  channel: FrameChannel;
  queue: SendQueue;
  inFlight: InFlight;
  pacer: CommitPacer;
  waits: SessionWaits;
  governor: CompressionGovernor;
  hasher: ChunkHasher;
  stats: BlockStats;
  meter: WireMeter;
  progress: BlockProgress;
  gate: ByteGate | undefined;
  signal: AbortSignal | undefined;
  idleTimeoutMs: number;
  /** Test-only: flip one payload byte of these DATA frames (1-based count in the pass), once each. */
  corruptDataFrames: Set<number> | undefined;
}

export class Sender {
  /** The volume is accounted for up to here once everything sent is acknowledged. */
  private frontierSent: number;
  private frontierCommitted: number;
  private dataFrameCount = 0;
  private readonly p: SenderParts;
  private readonly hasWork = (): boolean => this.p.queue.length > 0 || this.p.inFlight.resend.length > 0 || !!this.p.signal?.aborted;

  constructor(parts: SenderParts) {
    this.p = parts;
    this.frontierSent = parts.resumeFrom;
    this.frontierCommitted = parts.resumeFrom;
  }

  /** Sends the queue's items until the final mark (or an abort). */
  async run(): Promise<void> {
    const { queue, pacer, signal, stats } = this.p;
    for (;;) {
      await this.drainResends();
      await this.p.waits.until(this.hasWork, 'data to send', this.p.idleTimeoutMs);
      if (signal?.aborted) return;
      const item = queue.shift();
      if (!item) continue;
      if (item.kind === 'data') {
        let parts: Buffer[];
        try {
          if (!item.ready) this.p.governor.compressionBound();
          const enc = await item.encoded;
          // A raw payload points into a pooled read buffer: it goes back to the pool once the socket is done with it.
          parts = encodeDataFrameParts({ seq: 0, offset: item.offset, rawLength: item.rawLength, codec: enc.codec, hashes: item.hashes, payload: enc.payload });
        } catch (e) {
          item.read.release();
          throw e;
        }
        await this.sendFrame(parts, item.rawLength, item.offset, item.hashes, 0, () => item.read.release());
        stats.dataFrames += 1;
        this.frontierSent = item.frontier;
      } else if (item.kind === 'zero') {
        await this.sendFrame([encodeZeroFrame({ seq: 0, offset: item.offset, length: item.length })], item.length, item.offset, undefined);
        this.frontierSent = item.frontier;
        if (item.length >= COMMIT_EVERY_SCANNED / 2) await this.commit();
      } else {
        this.frontierSent = item.frontier;
        if (item.final) return;
        if (pacer.pending || this.frontierSent - this.frontierCommitted >= COMMIT_EVERY_SCANNED) await this.commit();
      }
      if (pacer.due()) await this.commit();
    }
  }

  /** Sends a COMMIT covering every frame sent so far; returns its id. */
  async commit(): Promise<number> {
    this.p.pacer.committed();
    const id = this.p.inFlight.commit();
    this.frontierCommitted = this.frontierSent;
    await this.p.channel.send(encodeJsonFrame(FrameType.COMMIT, { id, frontier: this.frontierSent }));
    this.p.meter.count();
    return id;
  }

  /** Rebuilds and sends the frames the receiver refused. */
  async drainResends(): Promise<void> {
    const resend = this.p.inFlight.resend;
    while (resend.length > 0) {
      const s = resend.shift()!;
      await this.sendFrame(await this.rebuild(s), s.raw, s.offset, s.hashes, s.nacks);
    }
  }

  private async sendFrame(parts: Buffer[], raw: number, offset: number, hashes: bigint[] | undefined, nacks = 0, onFlushed?: () => void): Promise<void> {
    const { inFlight, pacer, channel } = this.p;
    const window = inFlight.window;
    const isData = hashes !== undefined && nacks === 0;
    const bytes = parts.reduce((n, p) => n + p.length, 0);
    // A full window waits for an ACK, and only a COMMIT brings one.
    if (pacer.pending && !window.fits(bytes)) await this.commit();
    if (!window.fits(bytes)) this.p.governor.wireBound();
    await this.p.waits.until(() => window.fits(bytes), 'window space', this.p.idleTimeoutMs);
    setFrameSeq(parts[0]!, inFlight.add(bytes, raw, nacks, offset, hashes));
    pacer.added(bytes);
    let wire = parts;
    if (isData) {
      this.dataFrameCount += 1;
      if (this.p.corruptDataFrames?.delete(this.dataFrameCount)) {
        const last = Buffer.from(parts[parts.length - 1]!);
        last[last.length - 1]! ^= 0xff;
        wire = [...parts.slice(0, -1), last];
      }
    }
    // The gate paces the frame's bytes as they go onto the socket (after the window wait).
    await channel.send(wire, this.p.gate && { gate: this.p.gate, signal: this.p.signal }, onFlushed);
    this.p.meter.count();
    this.p.progress.emit();
  }

  /** Rebuilds a refused DATA frame from the source; the chunks must still hash as they did. */
  private async rebuild(s: Sent): Promise<Buffer[]> {
    const { source, chunkSize: cs, hasher } = this.p;
    const raw = Buffer.allocUnsafe(s.raw);
    const fh = await open(source, 'r');
    try {
      const { bytesRead } = await fh.read(raw, 0, s.raw, s.offset);
      if (bytesRead !== s.raw) throw new FerryError('SMS.0805', `short read from ${source} at ${s.offset}`);
    } finally {
      await fh.close();
    }
    s.hashes!.forEach((h, i) => {
      if (hasher.hash(raw.subarray(i * cs, Math.min((i + 1) * cs, raw.length))) !== h) {
        throw new FerryError('FERRY_SOURCE_CHANGED', `the source changed at ${s.offset + i * cs} before a refused frame could be resent; resuming`);
      }
    });
    const enc = await encodePayloadGoverned(raw, this.p.governor);
    return encodeDataFrameParts({ seq: 0, offset: s.offset, rawLength: s.raw, codec: enc.codec, hashes: s.hashes!, payload: enc.payload });
  }
}
