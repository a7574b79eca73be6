// A whole-server migration, agent side: discover the source server, open
// the receiver's 'system' session, plan the target layout (or map the one
// given), ask the receiver to lay it out, then copy every volume it names
// with the ordinary engines (replication/run-pass.ts) and tell it when each
// is done; END at the close, also on failure, so the receiver unmounts.
// The CLI (`ferry migrate --system`) and the daemon both run it; it reports
// steps and progress through callbacks and prints nothing.
//
// Owns the order of the steps and the agent's own read-only source mounts
// (source-mounts.ts). Must not touch: how a volume is sent (replication/),
// how the receiver lays out (receiver/system/), the layout rules (layout/).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, errorMessage, receivedCode, type ErrorCode, type ReceivedCode } from '../errors/ferry-error.js';
import type { Logger } from '../platform/log.js';
import type { CopyMode, Layout } from '../layout/model.js';
import type { SystemDisk, VolumeTarget } from '../layout/system-session.js';
import { mapLimitSettled } from '../platform/map-limit.js';
import { fileWorkers, runPass } from '../replication/run-pass.js';
import type { PassWorkers } from '../replication/file/pass-workers.js';
import type { ByteGate, PassSummary, ReceiverAddress, VolumePlan, VolumeProgress } from '../replication/types.js';
import { discoverSource, mapTargetServer, planTarget } from './layout-steps.js';
import { attachSources } from './source-match.js';
import { sourceExcludes } from './source-excludes.js';
import { SourceMounts } from './source-mounts.js';
import { openSystemSession, type SystemSession } from './system-client.js';
import { copyLanes, expectedSources, leftOut, planVolumes, type VolumeJob, type VolumeSource } from './volume-plan.js';

/**
 * Two volumes at a time: on the whole-server benchmark (test/bench/system.mjs,
 * 2 cores) one at a time left the CPU idle while a file system's walk and
 * fsyncs waited on the disk; more than two only adds seeks.
 */
export const DEFAULT_PARALLEL = 2;

export type WholeServerStep = 'discover' | 'layout' | 'copy' | 'configure' | 'finish';

export interface WholeServerStepEvent {
  step: WholeServerStep;
  state: 'start' | 'done' | 'failed';
  detail?: string;
  /** copy: the volume this event is about (absent for the copy step as a whole). */
  volume?: { id: string; index: number; count: number };
}

export type WholeServerProgress = VolumeProgress & { volumeId: string; volumeIndex: number; volumeCount: number };

export interface WholeServerOptions {
  receiver: ReceiverAddress;
  /** The receiver-side name of this migration (a target-style name: letters, digits, _ . -). */
  migrationId: string;
  mode: CopyMode;
  /** Where the source system is mounted ('/' for the running system). */
  sourceRoot: string;
  /** Limit discovery to these disks (and admit loop devices). */
  sourceDisks?: string[];
  /** The target layout, given: its volumes find their sources on this machine by UUID, mount point or id. */
  layout?: Layout;
  /** A task's or a file's SMS target_server (tables 4-99 to 4-105 and ferry's extensions), laid over the discovered source layout. */
  targetServer?: unknown;
  /** Wipe and lay out again even when the receiver holds this migration's earlier layout. */
  relayout?: boolean;
  /** The agent's state directory: file manifests, and its read-only source mounts under mounts/. */
  stateDir: string;
  /** A directory file passes never copy (the daemon's data directory); default stateDir. */
  agentDataDir?: string;
  verify?: boolean;
  /** Volumes copied at the same time (default DEFAULT_PARALLEL); with 2 or more, small ones go one at a time beside them (volume-plan.ts copyLanes). */
  parallel?: number;
  /** File level: send everything, ignoring the manifests of earlier passes. */
  full?: boolean;
  log: Logger;
  signal?: AbortSignal;
  gate?: ByteGate;
  /** After the copy: have the receiver configure the copied system for its new hardware (default true; `--no-configure`). */
  configure?: boolean;
  /** configure: keep the primary interface's static addresses instead of falling back to DHCP. */
  keepStaticNetwork?: boolean;
  onStep?(e: WholeServerStepEvent): void;
  onProgress?(p: WholeServerProgress): void;
}

export interface WholeServerVolume {
  id: string;
  kind: CopyMode;
  /** The receiver target it was copied to ('' when not copied). */
  target: string;
  mountPoint: string;
  fsType: string;
  summary: PassSummary | null;
  /** Why it was not copied (swap, no file system, an inactive LV). */
  skipped?: string;
  /** Why its copy failed, or was not attempted after an earlier failure. */
  error?: { code: string; message: string };
  /** What the receiver did after the volume's pass (a file system grown). */
  actions?: string[];
}

export interface WholeServerSummary {
  migrationId: string;
  mode: CopyMode;
  layoutState: 'created' | 'recognised';
  /** The layout as the receiver made it. */
  layout: Layout;
  notes: string[];
  volumes: WholeServerVolume[];
  /** What the receiver's configure step found and changed (absent when it did not run). */
  configured?: { distro: string; changes: string[]; log: string };
  /** Why configure failed (the copied data is intact). */
  configureError?: { code: string; message: string };
  durationMs: number;
}

/** A migration in which some volume failed: the summary says which. */
export class WholeServerError extends FerryError {
  constructor(
    code: ErrorCode | ReceivedCode,
    message: string,
    readonly summary: WholeServerSummary,
    cause?: unknown,
  ) {
    super(code, message, { cause });
    this.name = 'WholeServerError';
  }
}

export async function runWholeServer(o: WholeServerOptions): Promise<WholeServerSummary> {
  const t0 = Date.now();
  const step = (e: WholeServerStepEvent) => o.onStep?.(e);

  step({ step: 'discover', state: 'start' });
  // The receiver is reached while the source is discovered: neither needs the
  // other (a connection failure is thrown where the session is awaited).
  const connecting = openSystemSession(o.receiver, o.migrationId, { signal: o.signal });
  void connecting.catch(() => undefined);
  const source = await discoverSource(o.sourceRoot, o.sourceDisks).catch((e: unknown) => {
    step({ step: 'discover', state: 'failed', detail: errorMessage(e) });
    void connecting.then((s) => s.destroy(), () => undefined);
    throw e;
  });
  step({ step: 'discover', state: 'done', detail: describeLayout(source.layout) });

  const session = await connecting;
  const mounts = new SourceMounts(join(o.stateDir, 'mounts', o.migrationId), o.log);
  let closed = false;
  let workers: PassWorkers | undefined;
  // Made while the receiver lays out (see below); adopted by the copy step or closed.
  let spareWorkers: Promise<PassWorkers> | undefined;
  let preparing: Promise<unknown> = Promise.resolve();
  const closeWorkers = async () => {
    const w = workers;
    workers = undefined;
    await w?.close();
  };
  try {
    // The layout step.
    step({ step: 'layout', state: 'start' });
    let reply;
    let sent: Layout;
    const notes: string[] = [...source.notes];
    await mounts.clearStale();
    try {
      const planned = chooseLayout(o, source.layout, session.disks);
      notes.push(...planned.notes);
      sent = planned.layout;
      const layingOut = session.request({ op: 'layout', mode: o.mode, layout: sent, relayout: o.relayout ?? false }, o.signal);
      // While the receiver lays out (0.7-1.3 s on the whole-server benchmark),
      // the agent gets ready to copy: the worker pool's module, and the
      // read-only mounts of the source file systems the copy will read. A
      // failure here is not one: the copy step asks again and reports it.
      if (o.mode === 'file') {
        spareWorkers = fileWorkers();
        spareWorkers.then((w) => w.warm(), () => undefined);
        preparing = mapLimitSettled(expectedSources(sent, existsSync), 4, ({ key, source: s }) => sourceMount(o, mounts, key, s).catch(() => undefined));
      }
      reply = await layingOut;
    } catch (e) {
      step({ step: 'layout', state: 'failed', detail: errorMessage(e) });
      throw e;
    }
    notes.push(...reply.notes);
    step({ step: 'layout', state: 'done', detail: `${reply.state}: ${describeLayout(reply.layout)}, ${reply.volumes.length} volumes to copy` });

    // The copy step: every volume the receiver named.
    const jobs = planVolumes(sent, reply.volumes, existsSync);
    const count = jobs.filter((j) => j.source.kind !== 'skip').length;
    step({ step: 'copy', state: 'start', detail: `${count} volumes` });
    let failure: FerryError | undefined;
    // Volumes are copied `parallel` at a time, the largest first, the small
    // ones in a lane of their own beside them (copyLanes); events name each
    // volume by its index in the layout's order and the results keep that
    // order: one file system's walk or fsyncs wait on the disk while
    // another's compression uses the CPU. A lane moves on once a volume's
    // pass ended: the receiver's answer to volume-done (it waits for the
    // target's sync, and grows a block volume's file system) is waited for
    // beside the next volume, and every answer before the next step.
    let index = 0;
    const planned = jobs.map((job) => ({ job, at: { id: job.target.id, index: job.source.kind === 'skip' ? -1 : index++, count } }));
    const failed = (base: WholeServerVolume, at: { id: string; index: number; count: number }, e: unknown): WholeServerVolume => {
      const err = asFerryError(e);
      step({ step: 'copy', state: 'failed', volume: at, detail: err.message });
      // One volume's failure is kept and the others still go, unless the
      // session is gone (the receiver unmounted the tree) or we were stopped.
      if (session.closed || o.signal?.aborted) failure = err;
      return { ...base, error: { code: err.code, message: err.message } };
    };
    const copyOne = async ({ job, at }: (typeof planned)[number]): Promise<{ settled: Promise<WholeServerVolume> }> => {
      const base = resultOf(job.target);
      if (job.source.kind === 'skip') return { settled: Promise.resolve({ ...base, skipped: job.source.reason }) };
      if (failure) return { settled: Promise.resolve({ ...base, error: { code: 'FERRY_ABORTED', message: `not copied: ${failure.message}` } }) };
      try {
        step({ step: 'copy', state: 'start', volume: at, detail: describeJob(job) });
        const r = await copyVolume(o, session, mounts, job, at, workers);
        const settled = r.done.then(
          (actions): WholeServerVolume => {
            step({ step: 'copy', state: 'done', volume: at, detail: `${r.summary.pass} pass of ${r.summary.totalBytes} bytes` });
            return { ...base, summary: r.summary, ...(actions.length ? { actions } : {}) };
          },
          (e: unknown) => failed(base, at, e),
        );
        return { settled };
      } catch (e) {
        return { settled: Promise.resolve(failed(base, at, e)) };
      }
    };
    const parallel = Math.max(1, o.parallel ?? DEFAULT_PARALLEL);
    const { shared, small } = copyLanes(planned, parallel);
    // One pool of worker threads for every file pass of the run, closed once all ended (pass-workers.ts).
    if (jobs.some((j) => j.target.kind === 'file' && j.source.kind !== 'skip')) {
      workers = await (spareWorkers ?? fileWorkers());
      spareWorkers = undefined;
    }
    // Settled: the shared pool and the source mounts are released only once no lane is still copying.
    // At most 8 passes connect at once with the small lane: the receiver admits 8 handshakes per address by default.
    const sharedLanes = small.length > 0 ? Math.min(parallel, 7) : parallel;
    const lanes = await Promise.all([mapLimitSettled(shared, sharedLanes, copyOne), mapLimitSettled(small, 1, copyOne)]);
    await closeWorkers();
    const ordered = [...shared, ...small];
    const copied = await Promise.all(lanes.flat().map((l) => l.settled));
    const resultOfPlanned = new Map(ordered.map((p, i) => [p, copied[i]!]));
    const volumes = planned.map((p) => resultOfPlanned.get(p)!);
    for (const l of leftOut(reply.layout, reply.volumes)) {
      volumes.push({ id: l.id, kind: o.mode, target: '', mountPoint: l.mountPoint, fsType: l.fsType, summary: null, skipped: l.reason });
    }
    const failures = volumes.filter((v) => v.error);
    step({ step: 'copy', state: failures.length ? 'failed' : 'done', detail: `${count - failures.length} of ${count} volumes copied` });

    // The configure step: after every pass whose volumes all arrived (idempotent on the receiver).
    let configured: WholeServerSummary['configured'];
    let configureError: FerryError | undefined;
    if (o.configure !== false && failures.length === 0) {
      step({ step: 'configure', state: 'start' });
      try {
        const r = await session.request({ op: 'configure', keepStaticNetwork: o.keepStaticNetwork ?? false }, o.signal);
        configured = { distro: r.distro, changes: r.changes, log: r.log };
        step({ step: 'configure', state: 'done', detail: `${r.distro}: ${r.changes.length} changes (${r.log} on the target)` });
      } catch (e) {
        configureError = asFerryError(e);
        step({ step: 'configure', state: 'failed', detail: configureError.message });
      }
    }

    // The finish step: END, and the receiver unmounts the target tree.
    step({ step: 'finish', state: 'start' });
    closed = true;
    let closeError: unknown;
    await session.close().catch((e: unknown) => (closeError = e));
    step({ step: 'finish', state: closeError ? 'failed' : 'done', ...(closeError ? { detail: errorMessage(closeError) } : {}) });

    const summary: WholeServerSummary = {
      migrationId: o.migrationId,
      mode: o.mode,
      layoutState: reply.state,
      layout: reply.layout,
      notes,
      volumes,
      ...(configured ? { configured } : {}),
      ...(configureError ? { configureError: { code: configureError.code, message: configureError.message } } : {}),
      durationMs: Date.now() - t0,
    };
    if (failures.length) {
      const first = failures.find((v) => v.error!.code !== 'FERRY_ABORTED') ?? failures[0]!;
      const list = failures.map((v) => `${v.id} (${v.error!.code})`).join(', ');
      throw new WholeServerError(receivedCode(first.error!.code), `${failures.length} of ${count} volumes failed: ${list}; first: ${first.id}: ${first.error!.message}`, summary);
    }
    if (configureError) throw new WholeServerError(configureError.code, `every volume was copied, but configuring the system for its new hardware failed: ${configureError.message}`, summary, configureError);
    if (closeError) throw new WholeServerError(asFerryError(closeError).code, `every volume was copied, but the receiver did not close the layout cleanly: ${errorMessage(closeError)}`, summary, closeError);
    return summary;
  } finally {
    // Nothing is released under a mount or a pool still being made.
    await preparing;
    await closeWorkers();
    await spareWorkers?.then((w) => w.close(), () => undefined);
    if (!closed) await session.close().catch((e: unknown) => o.log.warn({ err: errorMessage(e) }, 'closing the system session failed'));
    session.destroy();
    for (const p of await mounts.releaseAll()) o.log.warn({ problem: p }, 'could not unmount a source mount');
  }
}

function chooseLayout(o: WholeServerOptions, source: Layout, disks: SystemDisk[]): { layout: Layout; notes: string[] } {
  if (o.layout) return { layout: attachSources(o.layout, source), notes: [] };
  // A target_server is laid over the source's own layout: its volumes keep their source devices.
  if (o.targetServer !== undefined) return mapTargetServer(o.targetServer, source);
  return planTarget(source, disks, o.mode);
}

function resultOf(t: VolumeTarget): WholeServerVolume {
  return { id: t.id, kind: t.kind, target: t.target, mountPoint: t.mountPoint, fsType: t.fsType, summary: null };
}

/**
 * One volume: its source made readable, its pass, then volume-done (the
 * receiver may grow its file system). Returns once the pass ended; `done`
 * settles with the receiver's answer to volume-done, asked at once (the
 * system session answers its requests in order).
 */
async function copyVolume(
  o: WholeServerOptions,
  session: SystemSession,
  mounts: SourceMounts,
  job: VolumeJob,
  at: { id: string; index: number; count: number },
  workers: PassWorkers | undefined,
): Promise<{ summary: PassSummary; done: Promise<string[]> }> {
  const path = await sourceMount(o, mounts, job.target.id, job.source);
  const mountPoint = job.source.kind === 'filesystem' ? job.source.mountPoint : job.target.mountPoint;
  const plan: VolumePlan = {
    kind: job.target.kind,
    source: path,
    target: job.target.target,
    ...(job.target.kind === 'file' ? { excludes: sourceExcludes(mountPoint, o) } : {}),
  };
  // A pass ends at once when the system session goes: the receiver has
  // unmounted the tree the pass writes into, nothing more can land.
  const ac = new AbortController();
  const onOuterAbort = () => ac.abort();
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let sessionGone: Error | undefined;
  void session.whenClosed().then((e) => {
    sessionGone = e;
    ac.abort();
  });
  const explained = (e: unknown): never => {
    if (sessionGone && !o.signal?.aborted) {
      throw new FerryError(
        'SMS.0807',
        `the receiver's system session ended while copying ${job.target.id} (${errorMessage(sessionGone)}): the target tree is no longer mounted; run the migration again to resume`,
        { cause: e },
      );
    }
    throw e;
  };
  let summary: PassSummary;
  try {
    summary = await runPass(
      plan,
      {
        receiver: o.receiver,
        log: o.log.child({ volume: job.target.id }),
        verify: o.verify ?? false,
        signal: ac.signal,
        ...(o.gate ? { gate: o.gate } : {}),
        ...(o.onProgress ? { onProgress: (p: VolumeProgress) => o.onProgress!({ ...p, volumeId: at.id, volumeIndex: at.index, volumeCount: at.count }) } : {}),
      },
      { stateDir: o.stateDir, agentDataDir: o.agentDataDir ?? o.stateDir, ...(o.full ? { full: true } : {}), ...(workers ? { workers } : {}) },
    );
  } catch (e) {
    return explained(e);
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
  }
  // Not waited for here: the receiver answers once its file session for the
  // volume ended, which includes the sync of the target (0.1–0.8 s on the
  // whole-server benchmark), time in which this lane copies its next volume.
  const done = session.request({ op: 'volume-done', id: job.target.id }, o.signal).then((d) => d.actions, explained);
  return { summary, done };
}

/**
 * The path the engine reads: a device, or the agent's own read-only mount (a bind of the source's, where it has one).
 * `key` names the mount (once per run, SourceMounts.readOnly): a volume's id, or a partition's for a Btrfs top level.
 */
async function sourceMount(o: WholeServerOptions, mounts: SourceMounts, key: string, s: VolumeSource): Promise<string> {
  switch (s.kind) {
    case 'device':
      return s.device;
    case 'btrfs': {
      const top = await mounts.btrfsTopLevel(s.device, s.partitionId);
      return s.subvolume ? join(top, s.subvolume) : top;
    }
    case 'filesystem':
      return mounts.readOnly(s.device, s.fsType, key, [], s.mountPoint ? join(o.sourceRoot, s.mountPoint) : undefined);
    case 'skip':
      throw new FerryError('FERRY_INTERNAL', `volume ${key} has no source`);
  }
}

function asFerryError(e: unknown): FerryError {
  return e instanceof FerryError ? e : new FerryError('FERRY_PASS_FAILED', errorMessage(e), { cause: e });
}

function describeLayout(l: Layout): string {
  const parts = l.disks.reduce((n, d) => n + d.partitions.length, 0);
  const lvs = l.volumeGroups.reduce((n, g) => n + g.logicalVolumes.length, 0);
  return `${l.disks.length} disk${l.disks.length === 1 ? '' : 's'}, ${parts} partitions${lvs ? `, ${lvs} logical volumes` : ''}`;
}

function describeJob(j: VolumeJob): string {
  const t = j.target;
  const what = t.wholeDisk ? 'whole disk' : t.subvolume ? `btrfs subvolume ${t.subvolume}` : t.subvolume === '' ? 'btrfs top level' : t.fsType || t.kind;
  return `${t.id}: ${t.kind} level, ${what}${t.mountPoint ? ` (${t.mountPoint})` : ''} → ${t.target}`;
}
