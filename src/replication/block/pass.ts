// Block-level replication, agent side: one pass of one volume to one
// receiver target. Read big (4 MiB), hash small (the receiver's chunk size,
// 32 KiB by default), compare with the receiver's manifest, and send only
// what differs: all-zero runs as ZERO markers, changed runs merged into DATA
// frames (lz4 or raw). A bounded window of unacknowledged bytes and regular
// COMMITs pace the stream; when the connection drops, the pass reconnects
// and resumes from what the receiver acknowledged. The pass ends when both
// sides agree on the digest over all chunk hashes.
//
// Must not touch: the CLI, the agent's state, the control plane.

import { createHash, randomUUID } from 'node:crypto';
import { open } from 'node:fs/promises';
import { FerryError, errorMessage } from '../../errors.js';
import { sizeOfPath } from '../../platform/device-size-linux.js';
import type { PassOptions, PassSummary, VolumeProgress } from '../types.js';
import { openClientSession, errorFromFrame } from '../session/connect.js';
import {
  AckSchema,
  Codec,
  DoneSchema,
  FrameType,
  MAX_DATA_RAW_BYTES,
  MAX_ZERO_RUN_BYTES,
  NackSchema,
  decodeJson,
  decodeManifestFrame,
  encodeDataFrameParts,
  encodeJsonFrame,
  encodeZeroFrame,
  frameTypeName,
  type CodecValue,
  type Done,
} from '../../protocol/frames.js';
import { loadPieceHasher } from '../../protocol/chunk-hash.js';
import { chunkBlock } from './chunker.js';
import { CompressionGovernor, encodeRunGoverned } from './compress.js';
import { ManifestCursor } from './manifest-cursor.js';
import { BufferPool, READ_AHEAD, READ_BLOCK_BYTES, readBlocks, type SourceBlock } from './source-reader.js';

export const DEFAULT_CHUNK_SIZE = 32 * 1024;
/** Unacknowledged bytes on the wire, at most. */
export const WINDOW_BYTES = 256 * 1024 * 1024;
/**
 * A COMMIT after this many frame bytes (each session starts at the first
 * value and doubles it with every ACK up to the second: a flaky link still
 * gets commits through, a good one pays few fsyncs) …
 */
const COMMIT_FIRST_BYTES = 4 * 1024 * 1024;
const COMMIT_EVERY_BYTES = 64 * 1024 * 1024;
/** … or after this long with frames uncommitted (slow or rate-limited links lose little on a cut). */
const COMMIT_EVERY_MS = 1000;
/** … or after this much volume scanned (zero runs, unchanged regions). */
const COMMIT_EVERY_SCANNED = 256 * 1024 * 1024;
const MAX_ZERO_RUN = MAX_ZERO_RUN_BYTES;
/** Frames being compressed or waiting to be sent, at most. */
const QUEUE_ITEMS = 3;
const IDLE_TIMEOUT_MS = 120_000;
const MAX_NACKS_PER_FRAME = 3;
const PROGRESS_EVERY_MS = 500;

/** Test-only fault injection; never set in production. */
export interface BlockPassInternals {
  /** Flip one payload byte on the wire of these DATA frames (1-based count in the pass), once each. */
  corruptDataFrames?: Set<number>;
  /** Chunk size to propose to a receiver with no manifest yet. */
  chunkSize?: number;
  /** Consecutive failed attempts (without progress) before giving up. */
  maxAttempts?: number;
}

interface Stats {
  bytesRead: number;
  bytesOnWire: number;
  payloadBytes: number;
  bytesSkippedZero: number;
  bytesSkippedUnchanged: number;
  doneBytes: number;
  dataFrames: number;
}

type Item =
  | {
      kind: 'data';
      offset: number;
      rawLength: number;
      hashes: bigint[];
      frontier: number;
      block: SourceBlock;
      encoded: Promise<{ codec: CodecValue; payload: Buffer }>;
      ready: boolean;
    }
  | { kind: 'zero'; offset: number; length: number; frontier: number }
  | { kind: 'mark'; frontier: number; final: boolean };

/**
 * A frame on the wire, not yet acknowledged. Payloads are not kept (the
 * window costs no memory): a DATA frame the receiver refuses is rebuilt
 * from the source, and must hash as before.
 */
interface Sent {
  seq: number;
  bytes: number;
  raw: number;
  nacks: number;
  offset: number;
  /** DATA: the chunk hashes it carried; ZERO: undefined. */
  hashes?: bigint[];
}

function abortError(): FerryError {
  const e = new FerryError('FERRY_ABORTED', 'the pass was stopped; everything sent so far is committed');
  e.name = 'AbortError';
  return e;
}

function retryable(e: unknown): boolean {
  return e instanceof FerryError && (e.code === 'SMS.0807' || e.code === 'FERRY_IDLE_TIMEOUT' || e.code === 'FERRY_SOURCE_CHANGED');
}

/**
 * Replicates `source` (block device or image file) to the receiver target
 * `volume`. A full pass when the receiver holds nothing, a delta otherwise.
 */
export async function runBlockPass(source: string, volume: string, options: PassOptions, internals: BlockPassInternals = {}): Promise<PassSummary> {
  const started = Date.now();
  const size = await sizeOfPath(source);
  const passId = randomUUID();
  const stats: Stats = { bytesRead: 0, bytesOnWire: 0, payloadBytes: 0, bytesSkippedZero: 0, bytesSkippedUnchanged: 0, doneBytes: 0, dataFrames: 0 };
  const log = options.log.child({ volume, passId });
  let passKind: 'full' | 'delta' | undefined;
  let failures = 0;
  const maxAttempts = internals.maxAttempts ?? 12;
  for (;;) {
    if (options.signal?.aborted) throw abortError();
    const progressBefore = stats.doneBytes;
    let acked = false;
    try {
      const r = await runSession({
        source,
        volume,
        size,
        passId,
        options,
        internals,
        stats,
        log,
        onWelcome: (p) => (passKind ??= p),
        onAck: () => (acked = true),
      });
      return {
        volume,
        kind: 'block',
        pass: passKind ?? 'full',
        totalBytes: size,
        bytesRead: stats.bytesRead,
        bytesOnWire: stats.bytesOnWire,
        bytesSkippedZero: stats.bytesSkippedZero,
        bytesSkippedUnchanged: stats.bytesSkippedUnchanged,
        durationMs: Date.now() - started,
        digest: r.digest,
        verified: r.verified,
      };
    } catch (e) {
      if (!retryable(e) || options.signal?.aborted) throw e;
      failures = acked || stats.doneBytes > progressBefore ? 1 : failures + 1;
      if (failures >= maxAttempts) throw e;
      const delay = Math.min(5000, 100 * 2 ** Math.min(failures, 6));
      log.warn({ err: errorMessage(e), attempt: failures, retryInMs: delay }, 'session lost; resuming from what the receiver committed');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

interface SessionArgs {
  source: string;
  volume: string;
  size: number;
  passId: string;
  options: PassOptions;
  internals: BlockPassInternals;
  stats: Stats;
  log: PassOptions['log'];
  onWelcome: (pass: 'full' | 'delta') => void;
  onAck: () => void;
}

async function runSession(a: SessionArgs): Promise<{ digest: string; verified: boolean }> {
  const { size, options, stats, internals } = a;
  const signal = options.signal;
  let phase: VolumeProgress['phase'] = 'connecting';
  let lastProgress = 0;
  // Raw bytes sent and not yet acknowledged (set once the window exists below).
  let inFlightRaw = (): number => 0;
  const progress = (force = false) => {
    if (!options.onProgress) return;
    const now = Date.now();
    if (!force && now - lastProgress < PROGRESS_EVERY_MS) return;
    lastProgress = now;
    options.onProgress({
      volume: a.volume,
      kind: 'block',
      pass: passKind,
      totalBytes: size,
      doneBytes: Math.min(size, stats.doneBytes),
      sentBytes: Math.min(size, stats.doneBytes + inFlightRaw()),
      payloadBytes: stats.payloadBytes,
      wireBytes: stats.bytesOnWire,
      phase,
    });
  };
  let passKind: 'full' | 'delta' = 'full';
  progress(true);

  const hasher = await loadPieceHasher();
  const { channel, welcome } = await openClientSession(
    options.receiver,
    { kind: 'block', target: a.volume, passId: a.passId, sizeBytes: size, chunkSize: internals.chunkSize ?? DEFAULT_CHUNK_SIZE },
    { signal },
  );
  passKind = welcome.pass;
  a.onWelcome(welcome.pass);
  const cs = welcome.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (READ_BLOCK_BYTES % cs !== 0) throw new FerryError('FERRY_FRAME_MALFORMED', `receiver chunk size ${cs} does not divide the read size`);
  const chunkCount = Math.ceil(size / cs);
  const cursor = new ManifestCursor(channel, chunkCount);
  // Both directions count: the manifest the receiver sends is part of the cost of a pass.
  let countedWire = 0;
  const countWire = () => {
    const now = channel.bytesWritten + channel.bytesRead;
    stats.bytesOnWire += now - countedWire;
    countedWire = now;
  };
  countWire();

  // ---- session failure: any error ends every wait
  let sessionError: Error | undefined;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  const fail = (e: Error) => {
    if (sessionError) return;
    sessionError = e;
    cursor.failAll(e);
    wake();
    channel.destroy();
  };
  /** Waits until `ready()` holds, waking on every event; throws on session failure or idle timeout. */
  const waitFor = async (ready: () => boolean, what: string, timeoutMs = IDLE_TIMEOUT_MS): Promise<void> => {
    while (!ready()) {
      if (sessionError) throw sessionError;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(done);
          fail(new FerryError('FERRY_IDLE_TIMEOUT', `no answer from the receiver while waiting for ${what}`));
          resolve();
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        waiters.add(done);
      });
    }
    if (sessionError) throw sessionError;
  };

  // ---- window and acknowledgements
  let nextSeq = 1;
  let nextCommit = 1;
  const unacked = new Map<number, Sent>();
  let unackedBytes = 0;
  inFlightRaw = () => {
    let n = 0;
    for (const x of unacked.values()) n += x.raw;
    return n;
  };
  const commitMarks = new Map<number, number>();
  let lastAckedCommit = 0;
  const resend: Sent[] = [];
  let done: Done | undefined;

  channel.onFrame((frame) => {
    try {
      switch (frame.type) {
        case FrameType.MANIFEST: {
          const m = decodeManifestFrame(frame.body);
          cursor.deliver(m.first, m.hashes);
          break;
        }
        case FrameType.ACK: {
          const ack = decodeJson(AckSchema, frame.type, frame.body);
          const mark = commitMarks.get(ack.id);
          if (mark === undefined) throw new FerryError('FERRY_FRAME_MALFORMED', `ACK for unknown commit ${ack.id}`);
          commitMarks.delete(ack.id);
          for (const [seq, s] of unacked) {
            if (seq > mark) break;
            unacked.delete(seq);
            unackedBytes -= s.bytes;
            stats.doneBytes += s.raw;
          }
          lastAckedCommit = Math.max(lastAckedCommit, ack.id);
          commitEvery = Math.min(COMMIT_EVERY_BYTES, commitEvery * 2);
          a.onAck();
          progress();
          break;
        }
        case FrameType.NACK: {
          const nack = decodeJson(NackSchema, frame.type, frame.body);
          const s = unacked.get(nack.seq);
          if (!s) break;
          unacked.delete(nack.seq);
          unackedBytes -= s.bytes;
          s.nacks += 1;
          a.log.warn({ seq: nack.seq, code: nack.code, attempt: s.nacks }, `receiver refused a frame: ${nack.message}`);
          if (s.nacks > MAX_NACKS_PER_FRAME) {
            fail(new FerryError(nack.code, `receiver refused the same frame ${s.nacks} times: ${nack.message}`));
            break;
          }
          if (!s.hashes) {
            fail(new FerryError(nack.code, `receiver refused a ZERO frame: ${nack.message}`));
            break;
          }
          resend.push(s);
          break;
        }
        case FrameType.DONE:
          done = decodeJson(DoneSchema, frame.type, frame.body);
          break;
        case FrameType.ERROR:
          fail(errorFromFrame(frame));
          break;
        default:
          throw new FerryError('FERRY_FRAME_UNKNOWN', `unexpected ${frameTypeName(frame.type)} frame from the receiver`);
      }
    } catch (e) {
      fail(e as Error);
    }
    wake();
  });
  void channel.whenClosed().then((e) => {
    fail(e);
  });

  // ---- the scanner: read, hash, compare, emit items into a bounded queue
  const queue: Item[] = [];
  const governor = new CompressionGovernor();
  // Read buffers: one being scanned, the reads ahead, the rest held by frames waiting to be encoded.
  const pool = new BufferPool(QUEUE_ITEMS + READ_AHEAD + 3, READ_BLOCK_BYTES);
  let scanDone = false;
  const digest = createHash('sha256');
  const resumeFrom = Math.min(size, Math.floor(welcome.resumeFrom / READ_BLOCK_BYTES) * READ_BLOCK_BYTES);
  const push = async (item: Item) => {
    await waitFor(() => queue.length < QUEUE_ITEMS || sessionError !== undefined, 'queue space');
    queue.push(item);
    wake();
  };

  const scan = async () => {
    phase = 'scanning';
    // Chunks below the resume point were committed earlier in this pass: their hashes come from the receiver.
    for (let k = 0; k * cs < resumeFrom; ) {
      const { entries, index } = await cursor.locate(k);
      const upto = Math.min(resumeFrom / cs, k - index + entries.length / 8);
      digest.update(entries.subarray(index * 8, (index + (upto - k)) * 8));
      k = upto;
    }
    stats.doneBytes = resumeFrom;
    let zeroRun: { offset: number; length: number } | undefined;
    let lastMark = resumeFrom;
    const flushZero = async (frontier: number) => {
      if (!zeroRun) return;
      const z = zeroRun;
      zeroRun = undefined;
      await push({ kind: 'zero', offset: z.offset, length: z.length, frontier });
    };
    for await (const block of readBlocks(a.source, resumeFrom, size, pool)) {
      if (signal?.aborted || sessionError) {
        block.release();
        break;
      }
      stats.bytesRead += block.data.length;
      const { entries, index } = await cursor.locate(block.offset / cs);
      const chunked = chunkBlock(block.data, block.offset, cs, (i) => entries.readBigUInt64BE((index + i) * 8), hasher, MAX_DATA_RAW_BYTES / 2);
      digest.update(chunked.hashes);
      stats.bytesSkippedZero += chunked.zeroBytes;
      for (const run of chunked.runs) {
        const end = run.offset + run.length;
        if (run.kind === 'same') {
          await flushZero(run.offset);
          stats.bytesSkippedUnchanged += run.length - run.zeroBytes;
          stats.doneBytes += run.length;
        } else if (run.kind === 'zero') {
          if (zeroRun && zeroRun.offset + zeroRun.length === run.offset && zeroRun.length + run.length <= MAX_ZERO_RUN) zeroRun.length += run.length;
          else {
            await flushZero(run.offset);
            zeroRun = { offset: run.offset, length: run.length };
          }
        } else {
          await flushZero(run.offset);
          const raw = block.data.subarray(run.offset - block.offset, end - block.offset);
          stats.payloadBytes += raw.length;
          block.retain();
          const item: Item = {
            kind: 'data',
            offset: run.offset,
            rawLength: raw.length,
            hashes: run.hashes,
            frontier: end,
            block,
            encoded: encodeRunGoverned(raw, governor),
            ready: false,
          };
          void item.encoded.then(
            () => (item.ready = true),
            () => {},
          );
          await push(item);
        }
      }
      block.release();
      const end = block.offset + block.data.length;
      if (end - lastMark >= COMMIT_EVERY_SCANNED / 4) {
        await flushZero(end);
        await push({ kind: 'mark', frontier: end, final: false });
        lastMark = end;
      }
      progress();
    }
    if (signal?.aborted || sessionError) return;
    await flushZero(size);
    await push({ kind: 'mark', frontier: size, final: true });
    scanDone = true;
  };

  // ---- the sender: frames in order, window, gate, commits
  let frontierSent = resumeFrom;
  let frontierCommitted = resumeFrom;
  let bytesSinceCommit = 0;
  let dataFrameCount = 0;
  let lastCommitAt = Date.now();
  let commitEvery = COMMIT_FIRST_BYTES;
  const sendCommit = async () => {
    lastCommitAt = Date.now();
    const id = nextCommit++;
    commitMarks.set(id, nextSeq - 1);
    bytesSinceCommit = 0;
    frontierCommitted = frontierSent;
    await channel.send(encodeJsonFrame(FrameType.COMMIT, { id, frontier: frontierSent }));
    countWire();
    return id;
  };
  const sendFrame = async (parts: Buffer[], raw: number, offset: number, hashes: bigint[] | undefined, nacks = 0, onFlushed?: () => void) => {
    const isData = hashes !== undefined && nacks === 0;
    const bytes = parts.reduce((n, p) => n + p.length, 0);
    if (bytesSinceCommit > 0 && unackedBytes + bytes > WINDOW_BYTES) await sendCommit();
    if (!(unackedBytes === 0 || unackedBytes + bytes <= WINDOW_BYTES)) governor.wireBound();
    await waitFor(() => unackedBytes === 0 || unackedBytes + bytes <= WINDOW_BYTES, 'window space');
    const seq = nextSeq++;
    parts[0]!.writeUInt32BE(seq, 5);
    unacked.set(seq, { seq, bytes, raw, nacks, offset, hashes });
    unackedBytes += bytes;
    bytesSinceCommit += bytes;
    let wire = parts;
    if (isData) {
      dataFrameCount += 1;
      if (internals.corruptDataFrames?.delete(dataFrameCount)) {
        const last = Buffer.from(parts[parts.length - 1]!);
        last[last.length - 1]! ^= 0xff;
        wire = [...parts.slice(0, -1), last];
      }
    }
    // The gate paces the frame's bytes as they go onto the socket (after the window wait).
    await channel.send(wire, options.gate && { gate: options.gate, signal }, onFlushed);
    countWire();
    progress();
  };
  /** Rebuilds a refused DATA frame from the source; the chunks must still hash as they did. */
  const rebuild = async (s: Sent): Promise<Buffer[]> => {
    const raw = Buffer.allocUnsafe(s.raw);
    const fh = await open(a.source, 'r');
    try {
      const { bytesRead } = await fh.read(raw, 0, s.raw, s.offset);
      if (bytesRead !== s.raw) throw new FerryError('SMS.0805', `short read from ${a.source} at ${s.offset}`);
    } finally {
      await fh.close();
    }
    s.hashes!.forEach((h, i) => {
      if (hasher.hash(raw.subarray(i * cs, Math.min((i + 1) * cs, raw.length))) !== h) {
        throw new FerryError('FERRY_SOURCE_CHANGED', `the source changed at ${s.offset + i * cs} before a refused frame could be resent; resuming`);
      }
    });
    const enc = await encodeRunGoverned(raw, governor);
    return encodeDataFrameParts({ seq: 0, offset: s.offset, rawLength: s.raw, codec: enc.codec, hashes: s.hashes!, payload: enc.payload });
  };
  const drainResends = async () => {
    while (resend.length > 0) {
      const s = resend.shift()!;
      await sendFrame(await rebuild(s), s.raw, s.offset, s.hashes, s.nacks);
    }
  };

  const sender = async () => {
    phase = 'sending';
    for (;;) {
      await drainResends();
      await waitFor(() => queue.length > 0 || resend.length > 0 || !!signal?.aborted, 'data to send');
      if (signal?.aborted) return;
      if (queue.length === 0) continue;
      const item = queue.shift()!;
      wake();
      if (item.kind === 'data') {
        let parts: Buffer[];
        try {
          if (!item.ready) governor.compressionBound();
          const enc = await item.encoded;
          // A raw payload points into a pooled read buffer: it goes back to the pool once the socket is done with it.
          parts = encodeDataFrameParts({ seq: 0, offset: item.offset, rawLength: item.rawLength, codec: enc.codec, hashes: item.hashes, payload: enc.payload });
        } catch (e) {
          item.block.release();
          throw e;
        }
        await sendFrame(parts, item.rawLength, item.offset, item.hashes, 0, () => item.block.release());
        stats.dataFrames += 1;
        frontierSent = item.frontier;
      } else if (item.kind === 'zero') {
        await sendFrame([encodeZeroFrame({ seq: 0, offset: item.offset, length: item.length })], item.length, item.offset, undefined);
        frontierSent = item.frontier;
        if (item.length >= COMMIT_EVERY_SCANNED / 2) await sendCommit();
      } else {
        frontierSent = item.frontier;
        if (item.final) return;
        if (bytesSinceCommit > 0 || frontierSent - frontierCommitted >= COMMIT_EVERY_SCANNED) await sendCommit();
      }
      if (bytesSinceCommit >= commitEvery || (bytesSinceCommit > 0 && Date.now() - lastCommitAt >= COMMIT_EVERY_MS)) await sendCommit();
    }
  };

  try {
    const scanning = scan().catch((e: unknown) => {
      fail(e as Error);
      throw e;
    });
    scanning.catch(() => {});
    await sender();
    if (signal?.aborted) {
      // Stop: commit what is on the wire, then leave.
      if (!sessionError) {
        const id = await sendCommit();
        await waitFor(() => lastAckedCommit >= id, 'the final commit', 30_000).catch(() => {});
      }
      throw abortError();
    }
    await scanning;
    if (!scanDone) throw sessionError ?? new FerryError('FERRY_INTERNAL', 'scan ended early');
    // Everything sent, including frames the receiver refused and we resend, must be acknowledged.
    phase = 'verifying';
    for (;;) {
      await drainResends();
      const id = await sendCommit();
      await waitFor(() => lastAckedCommit >= id, 'the final commit');
      if (resend.length === 0 && unacked.size === 0) break;
    }
    const ours = digest.digest('hex');
    await channel.send(encodeJsonFrame(FrameType.END, { digest: ours, sizeBytes: size, verify: options.verify ?? false }));
    countWire();
    progress(true);
    await waitFor(() => done !== undefined, 'the end-of-pass digest', 24 * 3600_000);
    const d = done!;
    if (d.digest !== ours) {
      throw new FerryError('SMS.0805', `Failed to migrate partition ${a.volume}: the receiver's digest ${d.digest} differs from ours ${ours}`);
    }
    if (options.verify && !d.verified) {
      throw new FerryError('SMS.0805', `Failed to migrate partition ${a.volume}: consistency check found ${d.mismatchedChunks} chunk(s) on the target that differ; the next pass resends them`);
    }
    phase = 'done';
    stats.doneBytes = size;
    progress(true);
    channel.end();
    return { digest: ours, verified: d.verified };
  } catch (e) {
    if (sessionError && e !== sessionError && !(e instanceof FerryError && e.code === 'FERRY_ABORTED')) {
      channel.destroy();
      throw sessionError;
    }
    channel.destroy();
    throw e;
  } finally {
    countWire();
  }
}
