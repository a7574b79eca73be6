// The agent daemon: what `ferry agent` runs. This folder owns the daemon's
// lifecycle (identity, registration, the command loop, periodic
// re-discovery, graceful shutdown), its task runner and its persisted state.
// It must not reach into the replication engines, the SMS client or
// discovery: it uses them only through ports.ts.
//
// Lifecycle: identity → register (POST /v3/sources) or update (PUT) with a
// persisted id, registering again when the control plane has forgotten it
// (SMS.0507/404) → resume a task that was running → poll GET
// /v3/sources/{id}/command every poll_interval (±20 %), answer every command
// with command_result → on SIGTERM/SIGINT/SIGBREAK stop the pass (data in
// flight committed, state saved) and exit. A control plane that is down is
// retried with capped exponential backoff; nothing it does crashes the loop.

import { FerryError, errorMessage, recoveryOf } from '../errors/ferry-error.js';
import { applyProcessPriority } from '../platform/process-priority.js';
import type { Logger } from '../platform/log.js';
import { agentVersion } from '../version.js';
import { Backoff, jittered, pause } from '../platform/backoff.js';
import { parseCommand, type ParsedCommand } from './commands.js';
import { readMachineIdentity } from './identity.js';
import { buildLogBundle } from './log-bundle.js';
import { isSourceGone } from './ports.js';
import { TaskRunner, type TaskRunnerDeps } from './task-runner.js';
import { configuredBlockSizes, layoutDigest } from './volume-plan.js';

/** What the daemon is built from: the task runner's dependencies, less what the daemon makes itself. */
export type AgentDeps = Pick<TaskRunnerDeps, 'config' | 'cp' | 'inventory' | 'replication' | 'wholeServer' | 'store' | 'logging'>;

interface PendingResult {
  name: string;
  result: 'success' | 'fail';
  detail: Record<string, unknown>;
}

export class AgentDaemon {
  private readonly log: Logger;
  private readonly runner: TaskRunner;
  private readonly outbox: PendingResult[] = [];
  /**
   * The control plane may be down for minutes and serves many agents:
   * equal jitter spreads them out without ever retrying at once.
   */
  private readonly backoff = new Backoff({ baseMs: 1000, maxMs: 30_000, jitter: 'equal' });
  private needsRegistration = false;
  private deleted = false;
  private nextRediscovery = 0;
  private downSince?: number;

  constructor(private readonly d: AgentDeps) {
    this.log = d.logging.log;
    this.runner = new TaskRunner({
      config: d.config,
      cp: d.cp,
      inventory: d.inventory,
      replication: d.replication,
      ...(d.wholeServer && { wholeServer: d.wholeServer }),
      store: d.store,
      logging: d.logging,
      log: this.log,
      onSourceGone: () => (this.needsRegistration = true),
    });
  }

  /** Runs until `signal` aborts; then stops the running pass and returns. */
  async run(signal: AbortSignal): Promise<void> {
    await this.applyNiceness();
    const identity = await readMachineIdentity();
    await this.d.store.update((s) => {
      if (s.identity && s.identity.fingerprint !== identity.fingerprint && s.sourceId) {
        this.log.warn({ sourceId: s.sourceId }, 'machine identity changed (cloned or moved disk?): registering as a new source');
        delete s.sourceId;
        delete s.task;
      }
      s.identity = identity;
      s.agent = { pid: process.pid, startedAt: new Date().toISOString(), version: agentVersion() };
    });
    this.d.logging.sourceId = this.d.store.get().sourceId;
    this.log.info({ identity: identity.fingerprint.slice(0, 16), version: agentVersion() }, 'ferry agent starting');

    await this.register(signal);
    let resumePending = true;

    while (!signal.aborted) {
      if (this.deleted) {
        await pause(3600_000, signal);
        continue;
      }
      let delay = jittered(this.d.config.poll_interval);
      try {
        if (this.needsRegistration) await this.register(signal);
        if (resumePending) {
          await this.runner.resume();
          resumePending = false;
        }
        await this.flushOutbox();
        await this.runner.retryPending();
        const sid = this.d.store.get().sourceId!;
        let body: unknown;
        try {
          body = await this.d.cp.getCommand(sid);
        } catch (e) {
          // The control plane answered, but with a command body the client cannot even read: answer it with fail.
          if ((e as { code?: string }).code !== 'FERRY_BAD_RESPONSE') throw e;
          this.upAgain();
          await this.handle({ kind: 'invalid', name: 'UNKNOWN', detail: `malformed command: ${this.d.logging.scrub(errorMessage(e))}` }, undefined);
          body = undefined;
        }
        this.upAgain();
        await this.handle(parseCommand(body), body);
        await this.maybeRediscover().catch((e) => {
          if (isSourceGone(e) || (e as { status?: number }).status === undefined) throw e;
          this.log.warn({ err: this.d.logging.scrub(errorMessage(e)) }, 'sending the new disk information failed');
        });
      } catch (e) {
        delay = this.down(e);
      }
      await pause(delay, signal);
    }
    this.log.info('stopping: committing in-flight data and saving state');
    await this.runner.shutdown();
    this.log.info('ferry agent stopped');
  }

  private down(e: unknown): number {
    if (isSourceGone(e)) {
      this.log.warn({ code: (e as { code?: string }).code }, 'the control plane no longer knows this source; registering again');
      this.needsRegistration = true;
      return 0;
    }
    const delay = this.backoff.next();
    if (this.downSince === undefined) this.downSince = Date.now();
    const level = this.backoff.count <= 3 || this.backoff.count % 10 === 0 ? 'warn' : 'debug';
    this.log[level](
      { err: this.d.logging.scrub(errorMessage(e)), code: (e as { code?: string }).code, attempt: this.backoff.count, retryInMs: delay },
      'control plane unreachable; retrying',
    );
    return delay;
  }

  private upAgain(): void {
    if (this.downSince !== undefined) {
      this.log.info({ downForMs: Date.now() - this.downSince }, 'control plane reachable again');
      this.downSince = undefined;
    }
    this.backoff.reset();
  }

  /** Registers (or updates) until it works or the agent is stopped. */
  private async register(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const body = await this.d.inventory.discover();
        const digest = layoutDigest(body, await configuredBlockSizes(this.d.config));
        let sid = this.d.store.get().sourceId;
        if (sid && !this.needsRegistration) {
          try {
            await this.d.cp.updateSource(sid, body);
            this.log.info({ sourceId: sid }, 'source updated with the current inventory');
          } catch (e) {
            if (!isSourceGone(e)) throw e;
            this.log.warn({ sourceId: sid }, 'the control plane no longer knows this source; registering again');
            sid = undefined;
          }
        } else {
          sid = undefined;
        }
        if (!sid) {
          const old = this.d.store.get().sourceId;
          sid = await this.d.cp.registerSource(body);
          this.log.info({ sourceId: sid, previous: old }, 'source registered');
          const orphan = old && old !== sid ? this.d.store.get().task : undefined;
          if (orphan) {
            // The control plane dropped the old source and its tasks with it: stop working for them.
            await this.runner.deleteAll();
            this.log.warn({ taskId: orphan.id }, 'the task belonged to the forgotten source; dropped it');
          }
          await this.d.store.update((s) => {
            s.sourceId = sid;
            s.registeredAt = new Date().toISOString();
            if (orphan) delete s.task;
          });
        }
        await this.d.store.update((s) => void (s.layoutDigest = digest));
        this.nextRediscovery = Date.now() + this.d.config.rediscover_interval * 1000;
        this.needsRegistration = false;
        this.d.logging.sourceId = sid;
        this.upAgain();
        const t = this.d.store.get().task;
        if (!t || t.status === 'finished' || t.status === 'failed') {
          if (!t) await this.d.cp.changeState(sid, 'WAITING', 'checking').catch((e) => this.log.debug({ err: errorMessage(e) }, 'changestate WAITING failed'));
        }
        return;
      } catch (e) {
        await pause(this.down(e), signal);
      }
    }
  }

  private async handle(cmd: ParsedCommand, raw: unknown): Promise<void> {
    if (cmd.kind === 'none') return;
    if (cmd.kind === 'invalid') {
      const rawName = (raw as { command_name?: unknown } | null)?.command_name;
      const name = cmd.name || (typeof rawName === 'string' && rawName ? rawName.slice(0, 64) : 'UNKNOWN');
      this.log.warn({ command: name, detail: cmd.detail }, 'rejected a command');
      await this.answer(name, 'fail', { msg: cmd.detail });
      return;
    }
    const log = this.log.child({ command: cmd.name, ...(cmd.taskId && { taskId: cmd.taskId }) });
    log.info('command received');
    try {
      let msg: string;
      switch (cmd.name) {
        case 'START':
          msg = await this.runner.start(cmd.taskId!);
          break;
        case 'STOP':
          msg = await this.runner.stop();
          break;
        case 'SYNC':
          msg = await this.runner.sync(cmd.taskId!);
          break;
        case 'UPLOAD_LOG':
          msg = await this.uploadLog(cmd.taskId!);
          break;
        case 'DELETE':
          await this.delete();
          return;
      }
      log.info({ detail: msg }, 'command done');
      await this.answer(cmd.name, 'success', { msg, ...(cmd.taskId && { task_id: cmd.taskId }) });
    } catch (e) {
      const code = e instanceof FerryError ? e.code : 'FERRY_COMMAND_FAILED';
      const msg = this.d.logging.scrub(errorMessage(e)).slice(0, 900);
      log.warn({ code, err: msg }, 'command failed');
      await this.answer(cmd.name, 'fail', { msg, error_code: code, ...(cmd.taskId && { task_id: cmd.taskId }) });
      if ((e as { code?: string }).code === 'SMS.0507') this.needsRegistration = true;
    }
  }

  private async delete(): Promise<void> {
    await this.runner.deleteAll();
    const sid = this.d.store.get().sourceId!;
    await this.answer('DELETE', 'success', { msg: 'agent stopped all work and forgot this source and its manifests; restart the agent to register again' });
    await this.flushOutbox().catch(() => {});
    await this.d.store.forgetSource();
    this.outbox.length = 0;
    this.deleted = true;
    this.log.info({ sourceId: sid }, 'source deleted: the agent stays idle until it is restarted');
    this.d.logging.sourceId = undefined;
  }

  private async uploadLog(taskId: string): Promise<string> {
    const archive = await buildLogBundle({
      logFiles: this.d.logging.logFiles(),
      recentLines: this.d.logging.recentLines(),
      stateFile: this.d.store.file,
      scrub: (t) => this.d.logging.scrub(t),
    });
    await this.d.cp.uploadLog(taskId, archive);
    return `uploaded ${archive.length} bytes of logs (tar + lz4)`;
  }

  /** Queues a command result and tries to send it now; unsent results are retried before each poll. */
  private async answer(name: string, result: 'success' | 'fail', detail: Record<string, unknown>): Promise<void> {
    this.outbox.push({ name, result, detail });
    await this.d.store.update((s) => {
      s.lastCommand = { name, result, detail: String(detail.msg ?? ''), at: new Date().toISOString() };
    });
    await this.flushOutbox().catch((e) => this.log.warn({ err: errorMessage(e) }, 'command result not delivered yet; will retry'));
  }

  private async flushOutbox(): Promise<void> {
    const sid = this.d.store.get().sourceId;
    if (!sid) return;
    while (this.outbox.length > 0) {
      const r = this.outbox[0]!;
      try {
        await this.d.cp.commandResult(sid, r.name, r.result, r.detail);
      } catch (e) {
        // The control plane refused this result for good (e.g. SMS.6021: no such command awaiting a result): drop it.
        if (recoveryOf(e) === 'permanent') {
          this.log.warn({ command: r.name, code: (e as { code?: string }).code }, `the control plane refused the ${r.name} result; dropping it: ${this.d.logging.scrub(errorMessage(e))}`);
        } else {
          throw e;
        }
      }
      this.outbox.shift();
    }
  }

  private async maybeRediscover(): Promise<void> {
    if (Date.now() < this.nextRediscovery) return;
    this.nextRediscovery = Date.now() + this.d.config.rediscover_interval * 1000;
    let body;
    try {
      body = await this.d.inventory.discover();
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 're-discovery failed; the next one is due in rediscover_interval');
      return;
    }
    const digest = layoutDigest(body, await configuredBlockSizes(this.d.config));
    if (digest === this.d.store.get().layoutDigest) return;
    const sid = this.d.store.get().sourceId!;
    this.log.warn('disk layout changed; sending the new disk information');
    if (await this.runner.layoutChanged(digest)) this.log.error('the disk layout changed under a running block task: failed it with SMS.0515');
    await this.d.cp.putDiskInfo(sid, body);
    await this.d.store.update((s) => void (s.layoutDigest = digest));
  }

  private async applyNiceness(): Promise<void> {
    const n = this.d.config.niceness;
    const problems = await applyProcessPriority({ cpu: n.cpu, ioClass: n.io_class, ioLevel: n.io_priority });
    for (const p of problems) this.log.warn({ err: p }, 'could not lower the process priority');
  }
}
