// One file-level pass of one root to one receiver target — what `ferry
// migrate --files` and the agent's MIGRATE_FILE tasks run. It decides full
// or delta from the receiver's word (WELCOME.kindState.lastPassId must match
// the pass our manifest records, else everything is sent again), streams
// the producer's tar in lz4-or-raw FILE_DATA frames under a bounded window
// of unacknowledged bytes, commits regularly, and on a cut reconnects and
// resumes after the last path the receiver made durable. The new manifest
// replaces the old one only after the receiver's FILE_DONE.
//
// Must not touch: the CLI, the agent's state, the control plane.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { FerryError, errorMessage, isRetryable } from '../../errors.js';
import type { PassOptions, PassSummary, VolumeProgress } from '../types.js';
import { encodeRun } from '../block/compress.js';
import { openClientSession, errorFromFrame } from '../session/connect.js';
import { FrameType, MAX_DATA_RAW_BYTES, decodeJson, encodeJsonFrame, type RawFrame } from '../../protocol/frames.js';
import {
  FileAckSchema, FileDoneSchema, FileFrameType, FileWelcomeStateSchema, decodeFileHashes, encodeFileData,
  type FileDone,
} from '../../protocol/file-frames.js';
import { defaultExcludedPaths } from './excludes.js';
import { readManifestLines, readPartialManifestLines, resumeBasis } from './manifest.js';
import { escapeField } from '../../protocol/paths.js';
import { hasher } from '../../protocol/file-pieces.js';
import { TarProducer, type ProduceStats } from './tar-producer.js';
import { Walker } from './walker.js';
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
}

const WINDOW_BYTES = 64 * 1024 * 1024;
const COMMIT_EVERY_BYTES = 32 * 1024 * 1024;
const COMMIT_EVERY_MS = 5_000;
const ENCODE_AHEAD = 4;
const PROGRESS_EVERY_MS = 500;

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

export async function runFilePass(root: string, name: string, o: FilePassOptions): Promise<PassSummary> {
  const t0 = Date.now();
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const files = filesFor(o.stateDir, root, name, o);
  const passId = readPassId(files.current) ?? randomUUID();
  writeFileSync(files.current, JSON.stringify({ passId }), { mode: 0o600 });
  const totals = { bytesOnWire: 0, payloadBytes: 0 };
  let attempts = 0;
  const maxAttempts = o.maxAttempts ?? 5;
  for (;;) {
    if (o.signal?.aborted) throw new FerryError('FERRY_ABORTED', 'file pass aborted');
    let progressed = false;
    try {
      const r = await attempt(root, name, o, files, passId, totals, () => (progressed = true));
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
    } catch (e) {
      if (progressed) attempts = 0;
      attempts++;
      if (!isRetryable(e) || attempts >= maxAttempts || o.signal?.aborted) throw e;
      o.log.warn({ target: name, attempt: attempts, err: errorMessage(e) }, 'file pass interrupted; reconnecting to resume');
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempts, 10_000)));
    }
  }
}

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
  const walker = new Walker(root, walkOptions);
  walker.prefetch();
  let session: Awaited<ReturnType<typeof openClientSession>>;
  let ks: z.infer<typeof FileWelcomeStateSchema>;
  try {
    session = await openClientSession(o.receiver, { kind: 'file', target: name, passId, agent: 'ferry' }, o.signal ? { signal: o.signal } : {});
    ks = FileWelcomeStateSchema.parse(session.welcome.kindState ?? {});
  } catch (e) {
    await walker.close();
    throw e;
  }
  const { channel } = session;
  const haveBasis = !o.full && ks.lastPassId !== undefined && ks.lastPassId === readPassId(files.meta) && existsSync(files.manifest);
  const pass: 'full' | 'delta' = haveBasis ? 'delta' : 'full';
  let basis: Iterator<string> = haveBasis ? readManifestLines(files.manifest) : ([] as string[])[Symbol.iterator]();
  if (ks.resumeAfter !== undefined && existsSync(files.partial)) {
    const after = Buffer.from(ks.resumeAfter, 'base64');
    basis = resumeBasis(readPartialManifestLines(files.partial), basis, after.length === 0 ? '.' : escapeField(after));
    o.log.info({ target: name }, 'resuming the interrupted pass after the last path the receiver committed');
  }
  // The partial is read lazily by the basis: move it aside so the new partial can take its name later.
  const producer = new TarProducer({
    root,
    manifest: files.manifest,
    basis,
    full: false,
    log: o.log,
    walker,
    remoteHashes: (path) => requestHashes(path),
  });

  // ---- frames from the receiver
  let acked = 0;
  let ackWaiter: (() => void) | null = null;
  let failure: Error | null = null;
  let doneResolve!: (d: FileDone) => void;
  const donePromise = new Promise<FileDone>((r) => (doneResolve = r));
  const hashWaiters = new Map<number, (h: Buffer | null) => void>();
  let nextHashId = 0;
  const failAll = (e: Error) => {
    if (failure) return;
    failure = e;
    ackWaiter?.();
    for (const w of hashWaiters.values()) w(null);
    doneResolve({ digest: '', entries: 0, deleted: 0, bytesWritten: 0 });
  };
  channel.onFrame((f: RawFrame) => {
    totals.bytesOnWire += f.body.length + 5;
    try {
      if (f.type === FileFrameType.FILE_ACK) {
        const a = decodeJson(FileAckSchema, f.type, f.body);
        acked = Math.max(acked, a.offset);
        onProgress();
        ackWaiter?.();
      } else if (f.type === FileFrameType.FILE_HASHES) {
        const h = decodeFileHashes(f.body);
        hashWaiters.get(h.id)?.(h.hashes);
        hashWaiters.delete(h.id);
      } else if (f.type === FileFrameType.FILE_DONE) {
        doneResolve(decodeJson(FileDoneSchema, f.type, f.body));
      } else if (f.type === FrameType.ERROR) {
        failAll(errorFromFrame(f));
      } else {
        failAll(new FerryError('FERRY_FRAME_UNEXPECTED', `unexpected frame 0x${f.type.toString(16)} from the receiver`));
      }
    } catch (e) {
      failAll(e as Error);
    }
  });
  void channel.whenClosed().then((e) => failAll(e instanceof FerryError ? e : new FerryError('SMS.0807', errorMessage(e))));
  const onAbort = () => failAll(new FerryError('FERRY_ABORTED', 'file pass aborted'));
  o.signal?.addEventListener('abort', onAbort, { once: true });

  const send = async (frame: Buffer) => {
    if (failure) throw failure;
    totals.bytesOnWire += frame.length;
    // The gate paces the frame onto the socket in slices (see FrameChannel.send).
    await channel.send(frame, o.gate && { gate: o.gate, signal: o.signal });
  };
  function requestHashes(path: Buffer): Promise<Buffer | null> {
    if (failure) return Promise.reject(failure);
    const id = nextHashId++;
    return new Promise((resolve, reject) => {
      hashWaiters.set(id, (h) => (failure ? reject(failure) : resolve(h)));
      send(encodeJsonFrame(FileFrameType.FILE_HASH_REQUEST, { id, path: path.toString('base64') })).catch(reject);
    });
  }

  // ---- the stream
  const digest = create64();
  let offset = 0;
  let sinceCommit = 0;
  let lastCommit = Date.now();
  let commitId = 0;
  let lastProgress = 0;
  const pending: Promise<Buffer>[] = [];
  const flushOne = async () => {
    const frame = await pending.shift()!;
    await send(frame);
    while (!failure && offset - acked > WINDOW_BYTES) await new Promise<void>((r) => (ackWaiter = r));
  };
  try {
    report('scanning', pass, producer.stats);
    for await (const chunk of producer.stream()) {
      for (let i = 0; i < chunk.length; i += MAX_DATA_RAW_BYTES) {
        if (failure) throw failure;
        const raw = chunk.subarray(i, i + MAX_DATA_RAW_BYTES);
        digest.update(raw);
        const at = offset;
        const hash = h64Raw(raw);
        offset += raw.length;
        totals.payloadBytes += raw.length;
        sinceCommit += raw.length;
        // lz4 runs on the thread pool; frames leave in order. (The producer never reuses a chunk it yielded.)
        pending.push(encodeRun(raw).then((enc) => encodeFileData({ offset: at, rawLength: raw.length, codec: enc.codec, hash, payload: enc.payload })));
        if (pending.length >= ENCODE_AHEAD) await flushOne();
        if (sinceCommit >= COMMIT_EVERY_BYTES || Date.now() - lastCommit > COMMIT_EVERY_MS) {
          while (pending.length) await flushOne();
          await send(encodeJsonFrame(FileFrameType.FILE_COMMIT, { id: commitId++, offset }));
          sinceCommit = 0;
          lastCommit = Date.now();
        }
      }
      if (Date.now() - lastProgress > PROGRESS_EVERY_MS) {
        lastProgress = Date.now();
        report('sending', pass, producer.stats);
      }
    }
    while (pending.length) await flushOne();
    report('verifying', pass, producer.stats);
    const mine = digest.digest().toString(16).padStart(16, '0');
    await send(encodeJsonFrame(FileFrameType.FILE_END, { offset, digest: mine }));
    const done = await donePromise;
    if (failure) throw failure;
    if (done.digest !== mine) throw new FerryError('SMS.0805', `Failed to migrate partition ${name}: stream digest mismatch (agent ${mine}, receiver ${done.digest})`);
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
    await Promise.allSettled(pending);
    throw failure ?? e;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}
