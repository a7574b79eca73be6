// Block-level replication, agent side: one pass of one volume to one
// receiver target. Read big (4 MiB), hash small (the receiver's chunk size,
// 32 KiB by default), compare with the receiver's manifest, and send only
// what differs: all-zero runs as ZERO markers, changed runs merged into DATA
// frames (lz4 or raw). A bounded window of unacknowledged bytes and regular
// COMMITs pace the stream; when the connection drops, the pass reconnects
// and resumes from what the receiver acknowledged. The pass ends when both
// sides agree on the digest over all chunk hashes.
//
// This file runs the pass (sessions on the shared reconnect policy) and one
// session: connect, resume, then the parts at work together — scanner.ts
// (read, hash, compare, queue), sender.ts (frames, window, commits,
// resends), replies.ts (the receiver's frames), in-flight.ts (frames not
// yet acknowledged) — and the end handshake. The window, commit pacing,
// waits and the digest agreement are the shared ones of ../session/.
//
// Must not touch: the CLI, the agent's state, the control plane.

import { randomUUID } from 'node:crypto';
import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import { sizeOfPath } from '../../platform/device-size-linux.js';
import { nativeFs } from '../../platform/native-fs.js';
import type { PassOptions, PassSummary } from '../types.js';
import { openClientSession } from '../session/connect.js';
import { CommitPacer } from '../session/commit-pacer.js';
import { agreeOnDigest } from '../session/finish.js';
import { withReconnects, type ReconnectPolicy } from '../session/reconnect.js';
import { SessionWaits } from '../session/waits.js';
import { FrameType, encodeJsonFrame } from '../../protocol/frames.js';
import { loadChunkHasher, type ChunkHasher } from '../../protocol/chunk-hash.js';
import { DEFAULT_CHUNK_SIZE } from '../../protocol/sizes.js';
import { CompressionGovernor } from '../../protocol/compress.js';
import { lz4CodecName } from '../../protocol/lz4-block.js';
import { InFlight } from './in-flight.js';
import { ManifestCursor } from './manifest-cursor.js';
import { BlockProgress, newBlockStats, type BlockStats } from './progress.js';
import { BlockReplies } from './replies.js';
import { Scanner } from './scanner.js';
import { Sender } from './sender.js';
import { SendQueue } from './send-queue.js';
import { READ_BYTES } from './source-reader.js';
import { WireMeter } from './wire-meter.js';

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
/** A receiver silent this long while the session waits for it fails the session (and the pass reconnects). */
const IDLE_TIMEOUT_MS = 120_000;
/** The receiver re-reads the whole target before answering END when asked to verify: wait long. */
const DONE_TIMEOUT_MS = 24 * 3600_000;
/** After a stop, how long the last commit may take before the pass leaves anyway. */
const STOP_COMMIT_TIMEOUT_MS = 30_000;
/**
 * Sessions lost in a row before the pass fails, and the waits between them
 * (0.2 s doubling to 5 s; 12 attempts unless the test internals say
 * otherwise): short, since a new block session resumes at once from what
 * the receiver committed and costs little; many, so that a pass of a large
 * disk rides out a network outage of half a minute or more. No jitter: one agent,
 * one receiver.
 */
const RECONNECT: ReconnectPolicy = { maxAttempts: 12, schedule: { baseMs: 100, maxMs: 5000, jitter: 'none' } };

/** Test-only fault injection; never set in production. */
export interface BlockPassInternals {
  /** Flip one payload byte on the wire of these DATA frames (1-based count in the pass), once each. */
  corruptDataFrames?: Set<number>;
  /** Chunk size to propose to a receiver with no manifest yet. */
  chunkSize?: number;
  /** Consecutive failed attempts (without progress) before giving up. */
  maxAttempts?: number;
  /** Hash on the main thread (WebAssembly) even where the native module reads and hashes. */
  hashInJs?: boolean;
  /** Read every read on its own, even where the native module could scan an unchanged stretch in one job (scanSame). */
  noStretches?: boolean;
}

function abortError(): FerryError {
  const e = new FerryError('FERRY_ABORTED', 'the pass was stopped; everything sent so far is committed');
  e.name = 'AbortError';
  return e;
}

/**
 * Replicates `source` (block device or image file) to the receiver target
 * `volume`. A full pass when the receiver holds nothing, a delta otherwise.
 */
export async function runBlockPass(source: string, volume: string, options: PassOptions, internals: BlockPassInternals = {}): Promise<PassSummary> {
  const started = Date.now();
  const size = await sizeOfPath(source);
  const passId = randomUUID();
  const stats = newBlockStats();
  const log = options.log.child({ volume, passId });
  let passKind: 'full' | 'delta' | undefined;
  const r = await withReconnects(
    async (progress) => {
      const before = stats.doneBytes;
      try {
        return await runSession({
          source,
          volume,
          size,
          passId,
          options,
          internals,
          stats,
          log,
          onWelcome: (p) => (passKind ??= p),
          onAck: () => progress.made(),
        });
      } catch (e) {
        // Regions found unchanged or zero count too: the next session resumes past them.
        if (stats.doneBytes > before) progress.made();
        throw e;
      }
    },
    {
      policy: { ...RECONNECT, maxAttempts: internals.maxAttempts ?? RECONNECT.maxAttempts },
      signal: options.signal,
      abortError,
      onRetry: (e, attempt, delay) =>
        log.warn({ err: errorMessage(e), attempt, retryInMs: delay }, 'session lost; resuming from what the receiver committed'),
    },
  );
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
}

interface SessionArgs {
  source: string;
  volume: string;
  size: number;
  passId: string;
  options: PassOptions;
  internals: BlockPassInternals;
  stats: BlockStats;
  log: PassOptions['log'];
  onWelcome: (pass: 'full' | 'delta') => void;
  onAck: () => void;
}

/** One session: connect, resume from what the receiver acknowledged, scan and send, then agree on the digest. */
async function runSession(a: SessionArgs): Promise<{ digest: string; verified: boolean }> {
  const { size, options, stats, internals } = a;
  const signal = options.signal;
  const progress = new BlockProgress(a.volume, size, stats, options.onProgress);
  progress.emit(true);

  // The hasher's WebAssembly compiles while TLS connects (both are on the way to the first read).
  const loading = loadChunkHasher();
  loading.catch(() => {});
  const { channel, welcome } = await openClientSession(
    options.receiver,
    { kind: 'block', target: a.volume, passId: a.passId, sizeBytes: size, chunkSize: internals.chunkSize ?? DEFAULT_CHUNK_SIZE },
    { signal },
  );
  let hasher: ChunkHasher;
  try {
    hasher = await loading;
  } catch (e) {
    channel.destroy();
    throw e;
  }
  // Where a pass's time goes, at debug level (FERRY_LOG_LEVEL=debug; the block bench prints it):
  // milliseconds since the process started (performance.now()) at each phase.
  const readHashed = internals.hashInJs ? undefined : nativeFs()?.readHashed;
  const scanSame = readHashed && !internals.noStretches ? nativeFs()?.scanSame : undefined;
  a.log.debug(
    { sinceProcessStartMs: Math.round(performance.now()), resumeFrom: welcome.resumeFrom, lz4: lz4CodecName(), hashing: readHashed ? (scanSame ? 'native, stretches' : 'native') : 'wasm' },
    'block session open',
  );
  progress.pass = welcome.pass;
  a.onWelcome(welcome.pass);
  const cs = welcome.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (READ_BYTES % cs !== 0) {
    channel.destroy();
    throw new FerryError('FERRY_FRAME_MALFORMED', `receiver chunk size ${cs} does not divide the read size`);
  }
  const cursor = new ManifestCursor(channel, Math.ceil(size / cs));
  const meter = new WireMeter(channel, stats);
  meter.count();

  // Any error ends every wait, fails the manifest requests and drops the connection.
  const waits = new SessionWaits();
  waits.onFailure((e) => {
    cursor.failAll(e);
    channel.destroy();
  });
  const inFlight = new InFlight(WINDOW_BYTES);
  progress.inFlightRaw = () => inFlight.rawBytes();
  const pacer = new CommitPacer({ firstBytes: COMMIT_FIRST_BYTES, maxBytes: COMMIT_EVERY_BYTES, everyMs: COMMIT_EVERY_MS });
  const replies = new BlockReplies(channel, { cursor, inFlight, pacer, waits, stats, progress, log: a.log, onAck: a.onAck });

  // Resume at a read boundary at or below what the receiver committed.
  const resumeFrom = Math.min(size, Math.floor(welcome.resumeFrom / READ_BYTES) * READ_BYTES);
  const queue = new SendQueue(waits, IDLE_TIMEOUT_MS);
  const governor = new CompressionGovernor();
  const scanner = new Scanner({
    source: a.source,
    size,
    chunkSize: cs,
    resumeFrom,
    cursor,
    hasher,
    readHashed,
    scanSame,
    governor,
    queue,
    waits,
    stats,
    signal,
    onProgress: () => progress.emit(),
  });
  const sender = new Sender({
    source: a.source,
    chunkSize: cs,
    resumeFrom,
    channel,
    queue,
    inFlight,
    pacer,
    waits,
    governor,
    hasher,
    stats,
    meter,
    progress,
    gate: options.gate,
    signal,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    corruptDataFrames: internals.corruptDataFrames,
  });
  /** Commits everything sent (after resending what was refused) until the receiver holds it all. */
  const commitAll = async (): Promise<void> => {
    for (;;) {
      await sender.drainResends();
      const id = await sender.commit();
      await waits.until(() => inFlight.lastAckedCommit >= id, 'the final commit', IDLE_TIMEOUT_MS);
      if (inFlight.resend.length === 0 && inFlight.size === 0) break;
    }
  };

  try {
    progress.phase = 'scanning';
    const scanning = scanner.run().catch((e: unknown) => {
      waits.fail(e as Error);
      throw e;
    });
    scanning.catch(() => {});
    progress.phase = 'sending';
    await sender.run();
    if (signal?.aborted) {
      // Stop: commit what is on the wire, then leave.
      if (!waits.error) {
        const id = await sender.commit();
        await waits.until(() => inFlight.lastAckedCommit >= id, 'the final commit', STOP_COMMIT_TIMEOUT_MS).catch(() => {});
      }
      throw abortError();
    }
    await scanning;
    a.log.debug({ sinceProcessStartMs: Math.round(performance.now()) }, 'block scan and send done');
    if (!scanner.done) throw waits.error ?? new FerryError('FERRY_INTERNAL', 'scan ended early');
    // Everything sent, including frames the receiver refused and we resend, must be acknowledged.
    progress.phase = 'verifying';
    await commitAll();
    const ours = scanner.digest.digest('hex');
    const d = await agreeOnDigest({
      ours,
      sendEnd: async () => {
        await channel.send(encodeJsonFrame(FrameType.END, { digest: ours, sizeBytes: size, verify: options.verify ?? false }));
        meter.count();
        progress.emit(true);
      },
      awaitDone: async () => {
        await waits.until(() => replies.done !== undefined, 'the end-of-pass digest', DONE_TIMEOUT_MS);
        return replies.done!;
      },
      mismatch: (theirs) => `Failed to migrate partition ${a.volume}: the receiver's digest ${theirs} differs from ours ${ours}`,
    });
    if (options.verify && !d.verified) {
      throw new FerryError('SMS.0805', `Failed to migrate partition ${a.volume}: consistency check found ${d.mismatchedChunks} chunk(s) on the target that differ; the next pass resends them`);
    }
    a.log.debug({ sinceProcessStartMs: Math.round(performance.now()) }, 'block pass agreed');
    progress.phase = 'done';
    stats.doneBytes = size;
    progress.emit(true);
    channel.end();
    return { digest: ours, verified: d.verified };
  } catch (e) {
    const sessionError = waits.error;
    channel.destroy();
    if (sessionError && e !== sessionError && !(e instanceof FerryError && e.code === 'FERRY_ABORTED')) throw sessionError;
    throw e;
  } finally {
    meter.count();
  }
}
