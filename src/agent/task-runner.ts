// Runs the one task this agent works on: resolves the receiver, plans the
// volumes, runs passes (the first is the full copy, later ones deltas; the
// engines resume from what the receiver acknowledged), reports progress and
// state to the control plane, persists what it is doing, and for continuous
// sync (`syncing: true`) schedules further delta passes until stopped.
// Stopping goes through an AbortSignal: the engines commit what is in flight
// and return, and the reason decides what is recorded (STOP → stopped,
// shutdown → still running so a restart resumes, DELETE → forgotten,
// layout change → failed with SMS.0515).
// A task whose target_server lists disks with partitions (and a config naming no
// volumes) migrates the whole server instead: the WholeServerPort discovers
// the source, has the receiver lay out its disks (FORMAT_DISK_LINUX_*), and
// copies every volume (MIGRATE_LINUX_*, SYNC_LINUX_* on later passes), then
// has the receiver configure the copied system (CONFIGURE_LINUX_*, when the
// agent config's system.configure is on; see system-progress.ts). Every pass of such a task sends the same layout under
// the same migration id, so the receiver recognises it and never lays out again.

import { schedule as cronSchedule, type ScheduledTask } from 'node-cron';
import type { AgentConfig } from '../config/agent-config.js';
import { FerryError, errorMessage, recoveryOf } from '../errors/ferry-error.js';
import { recoveryOfStatus } from '../errors/codes.js';
import type { Logger } from '../platform/log.js';
import { normalizeFingerprint } from '../platform/tls-identity.js';
import type { PassSummary, ReceiverAddress, VolumeProgress } from '../replication/types.js';
import type { AgentLogging } from './logging.js';
import type { ControlPlanePort, InventoryPort, ReplicationPort, TaskInfo, VolumePlan, WholeServerPort } from './ports.js';
import { isSourceGone } from './ports.js';
import type { StateStore, TaskState } from './state-store.js';
import { configuredBlockSizes, layoutDigest, planVolumes } from './volume-plan.js';
import { TaskThrottle, clockFromEnv } from '../replication/throttle/index.js';
import { ProgressAggregator, ProgressReporter, SystemSampler } from '../replication/progress/index.js';
import { SystemPassProgress, estimateCopyBytes } from './system-progress.js';

export type StopReason = 'stop' | 'shutdown' | 'delete' | 'layout' | 'overspeed';

interface Running {
  taskId: string;
  abort: AbortController;
  reason?: StopReason;
  error?: unknown;
  done: Promise<void>;
}

export interface TaskRunnerDeps {
  config: AgentConfig;
  cp: ControlPlanePort;
  inventory: InventoryPort;
  replication: ReplicationPort;
  /** Whole-server tasks; without it (Windows) every task copies the planned volumes. */
  wholeServer?: WholeServerPort;
  store: StateStore;
  logging: AgentLogging;
  log: Logger;
  /** Seconds between progress reports. */
  progressInterval?: number;
  /** Called whenever the control plane says the source is gone. */
  onSourceGone?: () => void;
}

const STOP_WAIT_MS = 9_000;

export class TaskRunner {
  private running?: Running;
  private timer?: ScheduledTask | NodeJS.Timeout;
  private syncQueued = false;
  private closed = false;
  /** A start/sync/resume is between its checks and launch(): others must wait their turn. */
  private preparing = false;
  /** State updates the control plane missed (it was down), latest per kind; re-sent by retryPending(). */
  private readonly pending = new Map<string, () => Promise<unknown>>();

  constructor(private readonly d: TaskRunnerDeps) {}

  get busyWith(): string | undefined {
    return this.running?.taskId;
  }

  private sourceId(): string | undefined {
    return this.d.store.get().sourceId;
  }

  /** START: accepts the task and runs its first (or resumed) pass in the background. */
  async start(taskId: string): Promise<string> {
    return this.exclusive(() => this.startNow(taskId));
  }

  /** Runs `fn` unless another start/sync is being prepared (then FERRY_BUSY). */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.preparing) throw new FerryError('FERRY_BUSY', 'another pass is being prepared; try again in a moment');
    this.preparing = true;
    try {
      return await fn();
    } finally {
      this.preparing = false;
    }
  }

  private async startNow(taskId: string): Promise<string> {
    if (this.running) {
      if (this.running.taskId === taskId) return `task ${taskId} is already running`;
      throw new FerryError('FERRY_BUSY', `task ${this.running.taskId} is running; stop it before starting task ${taskId}`);
    }
    const prev = this.d.store.get().task;
    const fresh = !prev || prev.id !== taskId;
    const { task, receiver, plans, digest } = await this.prepare(taskId);
    this.cancelSchedule(); // one task at a time: a waiting continuous sync ends here
    await this.d.store.update((s) => {
      s.task = {
        id: task.id,
        ...(task.name && { name: task.name }),
        type: task.type,
        status: 'running',
        syncing: task.syncing,
        passesDone: fresh ? 0 : (prev?.passesDone ?? 0),
        receiver: { host: receiver.host, port: receiver.port, fingerprint: receiver.fingerprint },
        layoutDigest: fresh ? digest : (prev?.layoutDigest ?? digest),
        volumes: fresh ? {} : (prev?.volumes ?? {}),
        startedAt: fresh ? new Date().toISOString() : (prev?.startedAt ?? new Date().toISOString()),
        ...(this.wholeServer(task) && { system: (!fresh && prev?.system) || { migrationId: migrationIdOf(task.id) } }),
      };
    });
    this.launch(task, receiver, plans);
    const what = this.wholeServer(task) ? `the whole server onto ${(task.targetServer!.disks as unknown[]).length} target disk(s)` : `${plans.length} volume(s)`;
    return `task ${task.id} (${task.type}) started: ${what} to receiver ${receiver.host}:${receiver.port}`;
  }

  /**
   * After a restart: picks up a task that was running (or waiting between
   * sync passes). Throws when it should be tried again (control plane down).
   */
  async resume(): Promise<void> {
    const t = this.d.store.get().task;
    if (!t) return;
    if (t.status === 'stopping') {
      await this.d.store.update((s) => void (s.task!.status = 'stopped'));
      return;
    }
    if (t.status === 'running') {
      if (this.running || this.preparing) return;
      this.d.log.info({ taskId: t.id, pass: t.pass }, 'resuming the task that was running before the agent stopped');
      this.preparing = true;
      try {
        const { task, receiver, plans } = await this.prepare(t.id);
        this.launch(task, receiver, plans);
      } catch (e) {
        if (recoveryOf(e) === 'permanent') {
          // The control plane refuses the task for good (deleted, not ours): record why.
          await this.fail(t.id, e);
          return;
        }
        this.d.log.warn({ taskId: t.id, err: this.d.logging.scrub(errorMessage(e)) }, 'cannot resume the task yet; retrying');
        throw e;
      } finally {
        this.preparing = false;
      }
    } else if (t.status === 'waiting' && t.syncing) {
      this.scheduleNext(t.id);
    }
  }

  /** SYNC: a delta pass now (queued behind a running pass). */
  async sync(taskId: string): Promise<string> {
    return this.exclusive(() => this.syncNow(taskId));
  }

  private async syncNow(taskId: string): Promise<string> {
    if (this.running) {
      if (this.running.taskId !== taskId) throw new FerryError('FERRY_BUSY', `task ${this.running.taskId} is running, not ${taskId}`);
      this.syncQueued = true;
      return `a pass of task ${taskId} is running; a delta pass follows it`;
    }
    const t = this.d.store.get().task;
    if (!t || t.id !== taskId || t.passesDone === 0) {
      // No completed pass here: SYNC means "make the target current", which starts the task.
      return this.startNow(taskId);
    }
    const { task, receiver, plans } = await this.prepare(taskId);
    await this.d.store.update((s) => {
      s.task!.status = 'running';
      delete s.task!.error;
    });
    this.launch(task, receiver, plans);
    return `delta pass ${t.passesDone + 1} of task ${taskId} started`;
  }

  /** STOP: aborts the running pass (in-flight data committed) and waits for it, within seconds. */
  async stop(): Promise<string> {
    this.cancelSchedule();
    const r = this.running;
    const t = this.d.store.get().task;
    if (!r) {
      if (t && (t.status === 'waiting' || t.status === 'running')) {
        await this.d.store.update((s) => void (s.task!.status = 'stopped'));
        await this.reportState(t.id, 'STOPPED');
        return `task ${t.id} stopped (no pass was running)`;
      }
      return 'nothing to stop: no task is running';
    }
    await this.d.store.update((s) => void (s.task!.status = 'stopping'));
    const stopped = await this.halt('stop');
    return stopped ? `task ${r.taskId} stopped; acknowledged data is kept and a new START resumes from it` : `task ${r.taskId} is still stopping`;
  }

  /** Graceful exit: abort the pass but keep the task marked running, so a restart resumes it. */
  async shutdown(): Promise<void> {
    this.closed = true;
    this.cancelSchedule();
    await this.halt('shutdown');
    await this.d.store.flush();
  }

  /** DELETE: stop everything; the caller forgets the source afterwards. */
  async deleteAll(): Promise<void> {
    this.cancelSchedule();
    await this.halt('delete');
  }

  /** Periodic re-discovery found a new layout: a block pass on the old one must fail (SMS.0515). */
  async layoutChanged(newDigest: string): Promise<boolean> {
    const t = this.d.store.get().task;
    if (!t || t.type !== 'MIGRATE_BLOCK' || !t.layoutDigest || t.layoutDigest === newDigest) return false;
    if (t.status !== 'running' && t.status !== 'waiting') return false;
    this.cancelSchedule();
    if (this.running) await this.halt('layout');
    await this.fail(t.id, new FerryError('SMS.0515', 'Migration failed. Source disk information has changed. Delete target server configuration and restart the Agent.'));
    return true;
  }

  private async halt(reason: StopReason): Promise<boolean> {
    const r = this.running;
    if (!r) return true;
    r.reason = reason;
    r.abort.abort(new FerryError('FERRY_ABORTED', `pass aborted: ${reason}`));
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      r.done.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_WAIT_MS))),
    ]);
    clearTimeout(timer);
    return finished;
  }

  private async prepare(taskId: string): Promise<{ task: TaskInfo; receiver: ReceiverAddress; plans: VolumePlan[]; digest: string }> {
    const task = await this.d.cp.getTask(taskId);
    const sid = this.sourceId();
    if (task.sourceId && sid && task.sourceId !== sid) {
      throw new FerryError('SMS.0202', `task ${taskId} belongs to source ${task.sourceId}, not to this agent's source ${sid}`);
    }
    const receiver = await this.resolveReceiver(task);
    const body = await this.d.inventory.discover();
    // A whole-server task's volumes are the ones its layout has: the flow finds them.
    const plans = this.wholeServer(task) ? [] : planVolumes(this.d.config, task, body);
    return { task, receiver, plans, digest: layoutDigest(body, await configuredBlockSizes(this.d.config)) };
  }

  private async resolveReceiver(task: TaskInfo): Promise<ReceiverAddress> {
    let ck;
    try {
      ck = await this.d.cp.getCertKey(task.id);
    } catch (e) {
      if (!isSourceGone(e)) throw e;
    }
    const host = ck?.host || task.migrationIp;
    if (!host) throw new FerryError('SMS.0202', `task ${task.id} has no migration_ip, and the control plane names no receiver host`);
    const fingerprint = ck?.fingerprint ?? this.d.config.receiver.fingerprint;
    const token = ck?.token ?? this.d.config.receiver.token;
    if (!fingerprint) throw new FerryError('SMS.0304', `no certificate fingerprint for the receiver of task ${task.id}: the control plane has none and the config sets no receiver.fingerprint`);
    if (!token) throw new FerryError('SMS.0304', `no join token for the receiver of task ${task.id}: the control plane has none and the config sets no receiver.token`);
    this.d.logging.addSecret(token);
    return { host, port: ck?.port ?? this.d.config.receiver.port, fingerprint: normalizeFingerprint(fingerprint), token };
  }

  /** Whether the task migrates the whole server: its target_server lists disks with partitions, the config names no volumes, and this agent can. */
  private wholeServer(task: TaskInfo): boolean {
    return task.targetServer !== undefined && !this.d.config.volumes?.length && this.d.wholeServer !== undefined;
  }

  private launch(task: TaskInfo, receiver: ReceiverAddress, plans: VolumePlan[]): void {
    const abort = new AbortController();
    const running: Running = { taskId: task.id, abort, done: Promise.resolve() };
    this.running = running;
    running.done = (this.wholeServer(task) ? this.runSystemPass(task, receiver, running) : this.runPass(task, receiver, plans, running))
      .catch((e) => this.d.log.error({ taskId: task.id, err: errorMessage(e) }, 'task bookkeeping failed'))
      .finally(() => {
        if (this.running === running) this.running = undefined;
        if (this.syncQueued && !running.reason && !this.closed) {
          this.syncQueued = false;
          void this.sync(task.id).catch((e) => this.d.log.warn({ taskId: task.id, err: errorMessage(e) }, 'queued delta pass could not start'));
        }
      });
  }

  /** Marks the pass running (a new one, or the one a restart interrupted) and tells the control plane. */
  private async beginPass(task: TaskInfo, receiver: ReceiverAddress, what: Record<string, unknown>): Promise<{ log: Logger; number: number; kind: 'full' | 'delta' }> {
    const log = this.d.log.child({ taskId: task.id });
    const before = this.d.store.get().task!;
    const number = before.passesDone + 1;
    const kind = before.passesDone === 0 ? 'full' : 'delta';
    const resumed = before.pass?.number === number;
    await this.d.store.update((s) => {
      s.task!.status = 'running';
      s.task!.pass = resumed ? s.task!.pass : { number, kind, startedAt: new Date().toISOString() };
      delete s.task!.error;
    });
    log.info({ pass: number, kind, ...what, receiver: `${receiver.host}:${receiver.port}` }, resumed ? 'resuming pass' : 'starting pass');
    await this.reportState(task.id, kind === 'full' ? 'REPLICATE' : 'SYNCING', kind === 'full' ? 'replicating' : 'syncing');
    await this.call(() => this.d.cp.updateTaskState(task.id, kind === 'full' ? 'RUNNING' : 'SYNCING'), log, 'warn', 'taskstate');
    return { log, number, kind };
  }

  /** The task's speed limits and over-speed protection over the pass's wire bytes. */
  private throttleFor(task: TaskInfo, running: Running, wireBytes: () => number, log: Logger): TaskThrottle {
    return new TaskThrottle({
      clock: clockFromEnv(),
      log,
      fetchRules: () => this.d.cp.getSpeedLimit(task.id),
      defaults: () => ({ speedLimitMbps: task.speedLimit ?? null, overSpeedThresholdPct: task.overSpeedThreshold ?? null }),
      wireBytes,
      onOverSpeed: (err) => {
        running.reason = 'overspeed';
        running.error = err;
        running.abort.abort(err);
      },
    });
  }

  private progressInterval(): number {
    return (this.d.progressInterval ?? Math.min(5, Math.max(1, this.d.config.poll_interval))) * 1000;
  }

  private async runPass(task: TaskInfo, receiver: ReceiverAddress, plans: VolumePlan[], running: Running): Promise<void> {
    const { log, number } = await this.beginPass(task, receiver, { volumes: plans.map((p) => p.target) });

    const progress = new Map<string, VolumeProgress>();
    // Every volume of the pass is planned, so progress reaches 100 only when the last one is done.
    const aggregator = new ProgressAggregator({ os: process.platform === 'win32' ? 'WINDOWS' : 'LINUX', now: Date.now, plan: plans.map((p) => ({ volume: p.target })) });
    const sampler = new SystemSampler();
    const reporter = new ProgressReporter({
      clock: clockFromEnv(),
      build: () => aggregator.report(sampler.latest),
      send: (body) => this.d.cp.reportProgress(task.id, body),
      intervalMs: this.progressInterval(),
      sampler,
      log,
    });
    aggregator.onSubtaskChange = () => reporter.kick();
    reporter.start();
    const wireTotal = () => [...progress.values()].reduce((n, p) => n + p.wireBytes, 0);
    const throttle = this.throttleFor(task, running, wireTotal, log);

    try {
      await throttle.start().catch((e) => log.warn({ err: errorMessage(e) }, 'speed-limit rules unavailable; using the task limit'));
      const summaries: PassSummary[] = [];
      for (const plan of plans) {
        if (running.abort.signal.aborted) break;
        const summary = await this.d.replication.runPass(plan, {
          receiver,
          log: log.child({ volume: plan.target }),
          signal: running.abort.signal,
          gate: throttle.gate,
          verify: task.consistencyCheck,
          onProgress: (p) => {
            progress.set(p.volume, p);
            aggregator.update(p);
            this.d.store.updateLazily((s) => {
              if (s.task?.id !== task.id) return;
              s.task.volumes[plan.target] = {
                ...s.task.volumes[plan.target],
                kind: p.kind,
                totalBytes: p.totalBytes,
                doneBytes: p.doneBytes,
                wireBytes: p.wireBytes,
                phase: p.phase,
              };
            });
          },
        });
        summaries.push(summary);
        await this.d.store.update((s) => {
          s.task!.volumes[plan.target] = {
            kind: summary.kind,
            totalBytes: summary.totalBytes,
            doneBytes: summary.totalBytes,
            wireBytes: summary.bytesOnWire,
            phase: 'done',
            digest: summary.digest,
            completedAt: new Date().toISOString(),
          };
        });
        log.info({ volume: plan.target, pass: summary.pass, bytesOnWire: summary.bytesOnWire, durationMs: summary.durationMs, digest: summary.digest }, 'volume replicated');
      }
      if (running.abort.signal.aborted) throw running.abort.signal.reason;
      await reporter.stop({ final: true, timeoutMs: 5000 });
      await this.passDone(task, number, log);
    } catch (e) {
      await reporter.stop({ final: true, timeoutMs: 2000 });
      await this.passEnded(task, running, e, log);
    } finally {
      throttle.stop();
    }
  }

  /**
   * One pass of a whole-server task: FORMAT_DISK_LINUX_* while the receiver
   * lays out (first pass only, until it once has), then the copy of every
   * volume. The layout is always the task's target_server under the same
   * migration id and never relayout: a SYNC, a resumed pass or a restarted
   * agent finds the receiver recognising it.
   */
  private async runSystemPass(task: TaskInfo, receiver: ReceiverAddress, running: Running): Promise<void> {
    const port = this.d.wholeServer!;
    const state = this.d.store.get().task!;
    const migrationId = state.system?.migrationId ?? migrationIdOf(task.id);
    const mode = task.type === 'MIGRATE_BLOCK' ? 'block' : 'file';
    const { log, number, kind } = await this.beginPass(task, receiver, { migrationId, mode, wholeServer: true });
    const view = new SystemPassProgress({
      mode,
      pass: kind,
      format: kind === 'full' && !state.system?.laidOutAt,
      estimateBytes: estimateCopyBytes(task.targetServer!, mode),
      now: Date.now,
    });
    const sampler = new SystemSampler();
    const reporter = new ProgressReporter({
      clock: clockFromEnv(),
      build: () => view.report(sampler.latest),
      send: async (body) => {
        await this.d.cp.reportProgress(task.id, body);
        view.sent(body);
      },
      intervalMs: this.progressInterval(),
      sampler,
      log,
    });
    view.onChange = () => reporter.kick();
    reporter.start();
    const wire = new Map<string, number>();
    const throttle = this.throttleFor(task, running, () => [...wire.values()].reduce((n, b) => n + b, 0), log);
    try {
      await throttle.start().catch((e) => log.warn({ err: errorMessage(e) }, 'speed-limit rules unavailable; using the task limit'));
      const summary = await port.run({
        receiver,
        migrationId,
        mode,
        targetServer: task.targetServer!,
        relayout: false,
        verify: task.consistencyCheck,
        log,
        signal: running.abort.signal,
        gate: throttle.gate,
        onStep: (e) => {
          view.step(e);
          if (e.state === 'failed' || e.volume === undefined) log.info({ step: e.step, state: e.state, detail: e.detail }, `whole-server ${e.step} ${e.state}`);
          if (e.step === 'layout' && e.state === 'done') {
            this.d.store.updateLazily((s) => {
              if (s.task?.id === task.id && s.task.system && !s.task.system.laidOutAt) s.task.system.laidOutAt = new Date().toISOString();
            }, 0);
          }
        },
        onProgress: (p) => {
          wire.set(p.volumeId, p.wireBytes);
          view.update(p);
          this.d.store.updateLazily((s) => {
            if (s.task?.id !== task.id) return;
            s.task.volumes[p.volumeId] = { ...s.task.volumes[p.volumeId], kind: p.kind, totalBytes: p.totalBytes, doneBytes: p.doneBytes, wireBytes: p.wireBytes, phase: p.phase };
          });
        },
      });
      if (running.abort.signal.aborted) throw running.abort.signal.reason;
      await this.d.store.update((s) => {
        for (const v of summary.volumes) {
          if (!v.summary) continue;
          s.task!.volumes[v.id] = {
            kind: v.summary.kind,
            totalBytes: v.summary.totalBytes,
            doneBytes: v.summary.totalBytes,
            wireBytes: v.summary.bytesOnWire,
            phase: 'done',
            digest: v.summary.digest,
            completedAt: new Date().toISOString(),
          };
        }
        s.task!.system = { migrationId, laidOutAt: s.task!.system?.laidOutAt ?? new Date().toISOString() };
      });
      const copied = summary.volumes.filter((v) => v.summary);
      log.info(
        { layout: summary.layoutState, copied: copied.map((v) => v.id), skipped: summary.volumes.filter((v) => v.skipped).map((v) => `${v.id}: ${v.skipped}`), bytesOnWire: copied.reduce((n, v) => n + v.summary!.bytesOnWire, 0) },
        'whole server replicated',
      );
      view.finish();
      await reporter.stop({ final: true, timeoutMs: 5000 });
      // That last report may have been FORMAT's or the copy's 100 (the next subtask had not gone out yet): the rest follows, up to the last subtask's 100.
      await this.flushSystemProgress(task, view, sampler, log);
      await this.passDone(task, number, log);
    } catch (e) {
      await reporter.stop({ final: true, timeoutMs: 2000 });
      // A failed configure is reported on its subtask before the task fails (the copied data is intact).
      if (view.failedConfigure) await this.flushSystemProgress(task, view, sampler, log);
      await this.passEnded(task, running, e, log);
    } finally {
      throttle.stop();
    }
  }

  /** Sends what a whole-server pass still has to say (at most FORMAT's 100, the copy's 100, CONFIGURE's 0 and its last word). */
  private async flushSystemProgress(task: TaskInfo, view: SystemPassProgress, sampler: SystemSampler, log: Logger): Promise<void> {
    for (let i = 0; i < 4 && !view.settled; i++) {
      const body = view.report(sampler.latest);
      if (!body) return;
      let ok = false;
      await this.call(async () => {
        await this.d.cp.reportProgress(task.id, body);
        ok = true;
      }, log);
      if (!ok) return;
      view.sent(body);
    }
  }

  private async passDone(task: TaskInfo, number: number, log: Logger): Promise<void> {
    await this.d.store.update((s) => {
      s.task!.passesDone = number;
      s.task!.lastPassAt = new Date().toISOString();
      delete s.task!.pass;
      s.task!.status = task.syncing ? 'waiting' : 'finished';
    });
    log.info({ pass: number }, task.syncing ? 'pass complete; waiting for the next scheduled sync' : 'pass complete; task finished');
    if (task.syncing) {
      await this.reportState(task.id, 'SYNCING', 'syncing');
      await this.call(() => this.d.cp.updateTaskState(task.id, 'SYNCING'), log, 'warn', 'taskstate');
      if (!this.closed) this.scheduleNext(task.id);
    } else {
      await this.call(() => this.d.cp.updateTaskState(task.id, 'MIGRATE_SUCCESS'), log, 'warn', 'taskstate');
      await this.reportState(task.id, 'FINISHED');
    }
  }

  private async passEnded(task: TaskInfo, running: Running, err: unknown, log: Logger): Promise<void> {
    switch (running.reason) {
      case 'shutdown':
        log.info('pass interrupted by shutdown; it resumes when the agent starts again');
        return;
      case 'delete':
        log.info('pass aborted: the source is being deleted');
        return;
      case 'layout':
        return; // layoutChanged() records SMS.0515
      case 'overspeed':
        await this.fail(task.id, running.error);
        return;
      case 'stop':
        await this.d.store.update((s) => void (s.task!.status = 'stopped'));
        // Say where the stop caught the pass (mid-stream, or which wait it ended: connecting, HELLO …).
        log.info({ err: this.d.logging.scrub(errorMessage(err)) }, 'pass stopped on request');
        await this.reportState(task.id, 'STOPPED');
        return;
      default:
        await this.fail(task.id, err);
    }
  }

  private async fail(taskId: string, err: unknown): Promise<void> {
    const code = err instanceof FerryError ? err.code : 'FERRY_PASS_FAILED';
    const message = this.d.logging.scrub(errorMessage(err)).slice(0, 900);
    await this.d.store.update((s) => {
      if (s.task?.id !== taskId) return;
      s.task.status = 'failed';
      s.task.error = { code, message };
    });
    this.d.log.error({ taskId, code, err: message }, 'task failed');
    await this.call(() => this.d.cp.updateTaskState(taskId, 'MIGRATE_FAIL', JSON.stringify({ error_code: code, error_msg: message })), this.d.log, 'warn', 'taskstate');
    await this.reportState(taskId, 'ERROR');
  }

  private scheduleNext(taskId: string): void {
    this.cancelSchedule();
    const run = () => {
      if (this.running || this.preparing || this.closed) return;
      this.d.log.info({ taskId }, 'scheduled delta pass');
      void this.sync(taskId).catch((e) => this.d.log.warn({ taskId, err: errorMessage(e) }, 'scheduled delta pass could not start'));
    };
    const { schedule, every_hours } = this.d.config.sync;
    let next: Date | undefined;
    if (schedule) {
      const t = cronSchedule(schedule, run, { noOverlap: true, name: `ferry-sync-${taskId}` });
      this.timer = t;
      next = t.getNextRun() ?? undefined;
    } else {
      const ms = (every_hours ?? 24) * 3600_000;
      this.timer = setInterval(run, ms);
      this.timer.unref();
      next = new Date(Date.now() + ms);
    }
    this.d.store.updateLazily((s) => {
      if (s.task?.id === taskId && next) s.task.nextPassAt = next.toISOString();
    }, 0);
  }

  private cancelSchedule(): void {
    const t = this.timer;
    this.timer = undefined;
    if (!t) return;
    if ('destroy' in t) void t.destroy();
    else clearInterval(t);
  }

  /** Re-sends the state updates the control plane missed; called before each poll. */
  async retryPending(): Promise<void> {
    for (const [key, fn] of [...this.pending]) {
      await fn();
      if (this.pending.get(key) === fn) this.pending.delete(key);
    }
  }

  /** changestate, remembered locally; failures are logged, never fatal. */
  private async reportState(taskId: string, copystate: Parameters<ControlPlanePort['changeState']>[1], cycle?: Parameters<ControlPlanePort['changeState']>[2]): Promise<void> {
    // changestate needs both fields: keep the current stage unless told otherwise.
    const stage = cycle ?? (copystate === 'FINISHED' ? 'cutovered' : ((this.d.store.get().migrationCycle as typeof cycle) ?? 'replicating'));
    await this.d.store.update((s) => {
      if (copystate) s.sourceState = copystate;
      s.migrationCycle = stage;
    });
    const sid = this.sourceId();
    if (!sid) return;
    await this.call(() => this.d.cp.changeState(sid, copystate, stage), this.d.log.child({ taskId }), 'warn', 'changestate');
  }

  /** A control-plane call whose failure must not stop replication. */
  private async call(fn: () => Promise<unknown>, log: Logger, level: 'warn' | 'debug' = 'warn', retryKey?: string): Promise<void> {
    if (retryKey) this.pending.delete(retryKey);
    try {
      await fn();
    } catch (e) {
      const status = (e as { status?: number }).status;
      // Retry later only what failed for want of a control plane (no answer, 5xx, 429), not what it refused.
      if (retryKey && (status === undefined || recoveryOfStatus(status) === 'retryable')) this.pending.set(retryKey, fn);
      if (isSourceGone(e)) this.d.onSourceGone?.();
      log[level]({ err: errorMessage(e), code: (e as { code?: string }).code }, 'control-plane update failed (replication continues)');
    }
  }

  /** The persisted view of the task, for status and command details. */
  describe(): TaskState | undefined {
    return this.d.store.get().task;
  }
}

/** The receiver-side name of a task's whole-server migration: the task id, in the letters a receiver target name allows. */
export function migrationIdOf(taskId: string): string {
  const id = taskId.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return id || 'task';
}
