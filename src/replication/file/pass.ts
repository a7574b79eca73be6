// One file-level pass of one root to one receiver target — what `ferry
// migrate --files` and the agent's MIGRATE_FILE tasks run. It decides full
// or delta from the receiver's word (WELCOME.kindState.lastPassId must match
// the pass our manifest records, else everything is sent again), streams
// the producer's tar in lz4-or-raw FILE_DATA frames under a bounded window
// of unacknowledged bytes, commits regularly, and on a cut reconnects and
// resumes after the last path the receiver made durable. The new manifest
// replaces the old one only after the receiver's FILE_DONE.
//
// This file runs the pass (sessions on the shared reconnect policy) and one
// session: connect, choose the basis and resume point, then the parts at
// work together — the walker and tar-producer.ts (what to send),
// stream-sender.ts (frames, window, commits), replies.ts (the receiver's
// frames) — and the end handshake. The window, commit pacing, waits and the
// digest agreement are the shared ones of ../session/.
//
// Must not touch: the CLI, the agent's state, the control plane.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import type { PassOptions, PassSummary, VolumeProgress } from '../types.js';
import { openClientSession } from '../session/connect.js';
import { CommitPacer } from '../session/commit-pacer.js';
import { agreeOnDigest } from '../session/finish.js';
import { ProgressTicker } from '../session/progress-ticker.js';
import { withReconnects, type ReconnectPolicy } from '../session/reconnect.js';
import { SessionWaits } from '../session/waits.js';
import { UnackedWindow } from '../session/window.js';
import { encodeJsonFrame } from '../../protocol/frames.js';
import { FileFrameType, FileWelcomeStateSchema, type FileDone } from '../../protocol/file-frames.js';
import { defaultExcludedPaths } from './excludes.js';
import { readManifestLines, readPartialManifestLines, resumeBasis } from './manifest.js';
import { escapeField } from '../../protocol/paths.js';
import { hasher } from '../../protocol/xxhash.js';
import { FileReplies } from './replies.js';
import { StreamSender } from './stream-sender.js';
import { TarProducer, type ProduceStats } from './tar-producer.js';
import { Walker } from './walker.js';
import { PassWorkers } from './pass-workers.js';
import { nativeBatchReader } from './small-file-reader.js';
import { nativeFs, procSelfFds } from '../../platform/native-fs.js';
import type { z } from 'zod';

export interface FilePassOptions extends PassOptions {
  /** Where this agent keeps its manifests (one per root and receiver target). */
  stateDir: string;
  /** Glob excludes (config's, then the task's). */
  excludes?: string[];
  /** The agent's own data directory, never copied. */
  agentDataDir?: string;
  /** Send everything, whatever the manifest says. */
  full?: boolean;
  /** Consecutive failed attempts (without progress) before giving up; default 5. */
  maxAttempts?: number;
  /**
   * Worker threads shared by the passes of one run (a whole server's volumes), closed by whoever made
   * them; without, a full pass makes its own and closes them at its end.
   */
  workers?: PassWorkers;
}

/**
 * Unacknowledged stream bytes, at most: two commits' worth (the receiver
 * acknowledges at commits, once the bytes are extracted), so one commit can
 * be on its way while the next fills. Counted in stream bytes, where the
 * block engine counts frame bytes in a larger window of its own.
 */
const WINDOW_BYTES = 64 * 1024 * 1024;
/** A FILE_COMMIT after this many stream bytes (fixed: every commit costs the receiver an fsync of what it extracted) … */
const COMMIT_EVERY_BYTES = 32 * 1024 * 1024;
/** … or after this long. */
const COMMIT_EVERY_MS = 5_000;
/**
 * Sessions lost in a row before the pass fails, and the waits between them
 * (1 s doubling to 10 s; 5 attempts unless the options say otherwise):
 * fewer and longer than the block engine's, as this engine always had them —
 * each new session walks the tree again up to the resume point, which makes
 * a retry dearer than a block session's. No jitter: one agent, one receiver.
 */
const RECONNECT: ReconnectPolicy = { maxAttempts: 5, schedule: { baseMs: 500, maxMs: 10_000, jitter: 'none' } };

interface PassFiles {
  manifest: string;
  partial: string;
  /** JSON { passId } of the pass the manifest describes. */
  meta: string;
  /** JSON { passId } of a pass in progress (kept across agent restarts for resume). */
  current: string;
}

function filesFor(stateDir: string, root: string, name: string, o: PassOptions): PassFiles {
  const key = createHash('sha256').update(`${o.receiver.fingerprint}|${name}|${root}`).digest('hex').slice(0, 16);
  const base = join(stateDir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${key}`);
  return { manifest: `${base}.manifest`, partial: `${base}.partial`, meta: `${base}.json`, current: `${base}.current.json` };
}

function readPassId(path: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { passId?: string }).passId;
  } catch {
    return undefined;
  }
}

/**
 * What a Linux pass cannot guard against in this process, said once a pass: without ferry's native module (not
 * built for this machine, FERRY_NATIVE=0) the tree is listed and read by path, and without /proc the directories
 * the module does not list (more than 100,000 entries) and the xattrs of FIFOs and devices are. A directory replaced
 * by a symlink while the pass runs is then followed out of the tree (docs/file-replication.md, "Attributes that are
 * not copied, and no swapped symlink followed"). Undefined when nothing is unguarded.
 */
export function walkUnguarded(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  if (!nativeFs()) return "ferry's native module is not loaded here: the tree is listed and read by path, so a directory replaced by a symlink while the pass runs would be followed out of the tree";
  if (!procSelfFds()) {
    return '/proc is not mounted: directories of more than 100,000 entries, and the extended attributes of FIFOs and devices, are read by path, so a directory above them replaced by a symlink while the pass runs would be followed';
  }
  return undefined;
}

export async function runFilePass(root: string, name: string, o: FilePassOptions): Promise<PassSummary> {
  const t0 = Date.now();
  const unguarded = walkUnguarded();
  if (unguarded) o.log.warn({ target: name }, unguarded);
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const files = filesFor(o.stateDir, root, name, o);
  const passId = readPassId(files.current) ?? randomUUID();
  writeFileSync(files.current, JSON.stringify({ passId }), { mode: 0o600 });
  const totals = { bytesOnWire: 0, payloadBytes: 0 };
  const r = await withReconnects((progress) => attempt(root, name, o, files, passId, totals, () => progress.made()), {
    policy: { ...RECONNECT, maxAttempts: o.maxAttempts ?? RECONNECT.maxAttempts },
    signal: o.signal,
    abortError: () => new FerryError('FERRY_ABORTED', 'file pass aborted'),
    onRetry: (e, attempt) => o.log.warn({ target: name, attempt, err: errorMessage(e) }, 'file pass interrupted; reconnecting to resume'),
  });
  rmSync(files.current, { force: true });
  rmSync(files.partial, { force: true });
  return {
    volume: name,
    kind: 'file',
    pass: r.pass,
    totalBytes: r.stats.totalBytes,
    bytesRead: r.stats.bytesRead,
    bytesOnWire: totals.bytesOnWire,
    bytesSkippedZero: r.stats.bytesSkippedZero,
    bytesSkippedUnchanged: r.stats.bytesSkippedUnchanged,
    durationMs: Date.now() - t0,
    digest: r.done.digest,
    verified: false,
  };
}

/** One session: connect, choose the basis and resume point, stream, then agree on the digest and keep the new manifest. */
async function attempt(
  root: string,
  name: string,
  o: FilePassOptions,
  files: PassFiles,
  passId: string,
  totals: { bytesOnWire: number; payloadBytes: number },
  onProgress: () => void,
): Promise<{ pass: 'full' | 'delta'; stats: ProduceStats; done: FileDone }> {
  const { h64Raw, create64 } = await hasher();
  // The walk learns the tree's size as it goes: until it ends, the total is
  // the file system's used space (an estimate), so that progress means
  // something instead of reading "all done so far" from the start.
  const estimate = await statfs(root)
    .then((f) => Math.max(0, (Number(f.blocks) - Number(f.bfree)) * Number(f.bsize)))
    .catch(() => 0);
  const report = (phase: VolumeProgress['phase'], pass: 'full' | 'delta', s?: ProduceStats) => {
    const walked = s?.totalBytes ?? 0;
    const walkDone = phase === 'verifying' || phase === 'done';
    o.onProgress?.({
      volume: name, kind: 'file', pass, totalBytes: walkDone ? walked : Math.max(walked, estimate), doneBytes: walked,
      payloadBytes: totals.payloadBytes, wireBytes: totals.bytesOnWire, phase,
    });
  };
  report('connecting', 'full');
  // The walk does not depend on the receiver's answer: it starts listing while the session connects.
  const walkOptions = { patterns: o.excludes ?? [], paths: defaultExcludedPaths(o.agentDataDir ?? o.stateDir), log: o.log };
  // A pass with a manifest to compare against is almost always a delta: it walks and reads on this
  // thread. Measured (issue 14, 43,000-entry usr tree, 2% changed, warm): worker threads cost their
  // start-up and one structured clone per listing and per batch — agent CPU 2.9 s with the walk's
  // and the small-file reader's workers, 2.25 s without (peak RSS 240 → 160 MB).
  const likelyDelta = !o.full && existsSync(files.manifest);
  // A full pass lists, reads and compresses on one pool of threads (pass-workers.ts: the agent's peak
  // RSS on a full pass of a /usr tree fell from about 320 MB with a pool per job; see there): the run's,
  // or one of its own.
  const own = likelyDelta || o.workers ? undefined : new PassWorkers();
  const workers = likelyDelta ? undefined : (o.workers ?? own);
  const walker = new Walker(root, { ...walkOptions, ...(workers ? { lister: workers.lister } : { threads: 0 }) });
  walker.prefetch();
  let session: Awaited<ReturnType<typeof openClientSession>> | undefined;
  let pass: 'full' | 'delta';
  let basis: Iterator<string>;
  try {
    session = await openClientSession(o.receiver, { kind: 'file', target: name, passId, agent: 'ferry' }, o.signal ? { signal: o.signal } : {});
    const ks: z.infer<typeof FileWelcomeStateSchema> = FileWelcomeStateSchema.parse(session.welcome.kindState ?? {});
    const haveBasis = !o.full && ks.lastPassId !== undefined && ks.lastPassId === readPassId(files.meta) && existsSync(files.manifest);
    pass = haveBasis ? 'delta' : 'full';
    basis = haveBasis ? readManifestLines(files.manifest) : ([] as string[])[Symbol.iterator]();
    if (ks.resumeAfter !== undefined && existsSync(files.partial)) {
      const after = Buffer.from(ks.resumeAfter, 'base64');
      basis = resumeBasis(readPartialManifestLines(files.partial), basis, after.length === 0 ? '.' : escapeField(after));
      o.log.info({ target: name }, 'resuming the interrupted pass after the last path the receiver committed');
    }
  } catch (e) {
    // Nothing below owns the connection or the walk yet.
    session?.channel.destroy();
    await walker.close();
    await own?.close();
    throw e;
  }
  const { channel } = session;

  // Any error ends every wait and every pending hash request (the connection is dropped below).
  const waits = new SessionWaits();
  const window = new UnackedWindow(WINDOW_BYTES);
  const replies = new FileReplies(channel, waits, window, totals, onProgress);
  const sender = new StreamSender({
    channel,
    waits,
    window,
    pacer: new CommitPacer({ firstBytes: COMMIT_EVERY_BYTES, maxBytes: COMMIT_EVERY_BYTES, everyMs: COMMIT_EVERY_MS }),
    totals,
    gate: o.gate,
    signal: o.signal,
    h64Raw,
    digest: create64(),
    ...(workers ? { compressor: workers.lz4() } : {}),
    // Slices go back to the producer for reuse once sent (the producer is made below; called only from write()).
    release: (slice) => producer.recycle(slice),
  });
  // The old partial is read lazily by the basis; keepPartialManifest renames the new one over it only when an attempt is cut.
  const native = nativeFs();
  const nativeReads = native ? nativeBatchReader(native) : undefined;
  const producer = new TarProducer({
    root,
    manifest: files.manifest,
    basis,
    full: false,
    log: o.log,
    walker,
    // Small files are read by the native module on libuv's pool where it loads (small-file-reader.ts
    // nativeBatchReader), else on the pass's worker threads (a full pass) or through node:fs on the pool.
    smallFileThreads: nativeReads ?? (workers ? workers.read : 0),
    remoteHashes: (path) => replies.requestHashes(path, sender.send),
  });
  const onAbort = () => waits.fail(new FerryError('FERRY_ABORTED', 'file pass aborted'));
  o.signal?.addEventListener('abort', onAbort, { once: true });

  const ticker = new ProgressTicker();
  try {
    report('scanning', pass, producer.stats);
    for await (const slice of producer.stream()) {
      await sender.write(slice);
      if (ticker.due()) report('sending', pass, producer.stats);
    }
    await sender.flush();
    report('verifying', pass, producer.stats);
    const mine = sender.digestHex();
    const done = await agreeOnDigest({
      ours: mine,
      sendEnd: () => sender.send(encodeJsonFrame(FileFrameType.FILE_END, { offset: sender.offset, digest: mine })),
      awaitDone: async () => {
        await waits.until(() => replies.done !== undefined, 'the end-of-pass digest', Infinity);
        return replies.done!;
      },
      mismatch: (theirs) => `Failed to migrate partition ${name}: stream digest mismatch (agent ${mine}, receiver ${theirs})`,
    });
    producer.commitManifest();
    writeFileSync(files.meta, JSON.stringify({ passId }), { mode: 0o600 });
    channel.end();
    report('done', pass, producer.stats);
    return { pass, stats: producer.stats, done };
  } catch (e) {
    // Keep what was sent, so a reconnect can resume after the receiver's last committed path.
    try {
      producer.keepPartialManifest(files.partial);
    } catch {
      producer.abandonManifest();
    }
    channel.destroy();
    await sender.settle();
    throw waits.error ?? e;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    // After the frames still being compressed settled (above): a closed pool never settles what it had in flight.
    await own?.close();
  }
}
