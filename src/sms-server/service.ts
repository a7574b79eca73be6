// The SMS semantics of the local control plane: registration and source
// state, tasks and their state machine, the per-source command queue,
// progress history, speed limits, the task's certificates and receiver
// hand-out (certkey), log collection and uploads. Every operation validates against the documented rules and
// throws ApiError with the documented code; every change goes through one
// store transaction. Nothing here knows about HTTP.

import { randomUUID } from 'node:crypto';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import {
  COPY_STATE_TO_SOURCE_STATE,
  changeStateSchema,
  commandResultSchema,
  diskInfoSchema,
  progressReportSchema,
  sourceBodySchema,
  sourceListQuerySchema,
  sourceUpdateSchema,
  speedLimitSetSchema,
  taskActionSchema,
  taskCreateSchema,
  taskListQuerySchema,
  taskUpdateSchema,
  TASK_STATES,
  updateVolumeGroups,
  type MigrationCycle,
  type SourceState,
  type TaskState,
} from '../sms/schemas/index.js';
import { fsyncDir } from '../platform/atomic-file.js';
import type { CertificateAuthority } from '../platform/tls-ca.js';
import { ApiError, badRequest } from './api-error.js';
import { parseBody } from './http-server.js';
import {
  CYCLE_ALLOWS,
  DELETABLE_TASK_STATES,
  RESTARTABLE_TASK_STATES,
  RUNNING_TASK_STATES,
  STARTABLE_TASK_STATES,
  STOPPABLE_TASK_STATES,
  SYNCABLE_TASK_STATES,
  commandRecordSchema,
  logCollectStatus,
  progressEntrySchema,
  sourceDetailsView,
  sourceRecordSchema,
  sourceSummaryView,
  taskDetailsView,
  taskRecordSchema,
  taskStateAfterCopyState,
  taskSummaryView,
  type CommandRecord,
  type ProgressEntry,
  type QueuedCommandName,
  type SourceRecord,
  type TaskFacts,
  type TaskRecord,
} from './model.js';
import type { Op, Store } from './store.js';
import { assertTargetServer } from './target-server-check.js';
import { checkDiskAdjustment, checkVolumeGroupAdjustment } from './adjustment-check.js';

/** A source that has not called us for this long shows `connected: false`. */
export const AGENT_TIMEOUT_MS = 90_000;
/** The stage a copystate given alone moves a source to, when its current stage does not allow that state. */
const HOME_CYCLE: Partial<Record<SourceState, MigrationCycle>> = {
  unavailable: 'checking',
  waiting: 'checking',
  initialize: 'replicating',
  replicate: 'replicating',
  syncing: 'syncing',
  cloning: 'syncing',
  cutovering: 'cutovering',
  finished: 'cutovered',
  stopping: 'replicating',
  stopped: 'replicating',
  error: 'replicating',
  deleting: 'replicating',
};

/** Progress reports kept per task (oldest dropped first). */
export const PROGRESS_HISTORY_CAP = 20_000;
/** Finished commands kept per source for inspection. */
const DONE_COMMANDS_KEPT = 50;

const idsBodySchema = z.object({ ids: z.array(z.string().max(255)).max(65_535) });

interface Counters {
  command: number;
  subtask: number;
}
interface HistoryIndex {
  first: number;
  next: number;
}

export interface ServiceOptions {
  dataDir: string;
  now?: () => number;
  /** Issues the certificates of GET /v3/tasks/{id}/certkey; without one, certkey answers SMS.0511. */
  ca?: CertificateAuthority;
}

/** Body of collectLog, POST /v3/tasks/{id}/log (the SDK's UploadLogRequestBody). */
const collectLogSchema = z.object({ log_bucket: z.string().max(255).optional() });
/** Query of GET /v3/tasks/{id}/certkey (the SDK's ShowCertKeyRequest). */
const certKeyQuerySchema = z.object({ enable_ca_cert: z.boolean().optional() });

const put = (coll: Op['coll'], id: string, value: unknown): Op => ({ op: 'put', coll, id, value });
const del = (coll: Op['coll'], id: string): Op => ({ op: 'del', coll, id });
const pad = (n: number) => String(n).padStart(12, '0');

export class ControlPlaneService {
  private readonly lastVisit = new Map<string, number>();
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly options: ServiceOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Checks every stored record against its schema; a store written by something else is refused. */
  validateStore(): void {
    const check = (coll: Op['coll'], schema: z.ZodType) => {
      for (const [id, v] of this.store.entries(coll)) {
        const r = schema.safeParse(v);
        if (!r.success) throw new Error(`stored ${coll} record ${id} is invalid: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
      }
    };
    check('sources', sourceRecordSchema);
    check('tasks', taskRecordSchema);
    check('commands', commandRecordSchema);
    check('progress', progressEntrySchema);
  }

  // ---- lookups ---------------------------------------------------------------

  private source(id: string): SourceRecord {
    const s = this.store.get<SourceRecord>('sources', id);
    if (!s) throw badRequest('SMS.7602', `The specified source server does not exist: ${id}`, [id]);
    return s;
  }

  private task(id: string): TaskRecord {
    const t = this.store.get<TaskRecord>('tasks', id);
    if (!t) throw badRequest('SMS.7703', `Task does not exist: ${id}`, [id]);
    return t;
  }

  private tasksOf(sourceId: string): TaskRecord[] {
    return this.store.values<TaskRecord>('tasks').filter((t) => t.source_id === sourceId);
  }

  private currentTask(sourceId: string): TaskRecord | undefined {
    return this.tasksOf(sourceId).sort((a, b) => b.create_date - a.create_date)[0];
  }

  private commandsOf(sourceId: string): CommandRecord[] {
    return this.store
      .values<CommandRecord>('commands')
      .filter((c) => c.source_id === sourceId)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private counters(): Counters {
    return this.store.get<Counters>('meta', 'counters') ?? { command: 0, subtask: 0 };
  }

  connected(sourceId: string): boolean {
    const t = this.lastVisit.get(sourceId);
    return t !== undefined && this.now() - t < AGENT_TIMEOUT_MS;
  }

  private visit(sourceId: string): void {
    this.lastVisit.set(sourceId, this.now());
  }

  /** Ops that queue a command (and bump the command counter in `c`). */
  private queueCommand(c: Counters, sourceId: string, name: QueuedCommandName, taskId: string | null, bucket?: string): Op {
    c.command++;
    const rec: CommandRecord = {
      id: `c${pad(c.command)}`,
      source_id: sourceId,
      command_name: name,
      task_id: taskId,
      state: 'queued',
      created_at: this.now(),
      delivered_at: null,
      done_at: null,
      result: null,
      result_detail: null,
      ...(bucket && { bucket }),
    };
    return put('commands', rec.id, rec);
  }

  private sourceStateOps(src: SourceRecord, state: SourceState, cycle?: MigrationCycle): Op {
    return put('sources', src.id, { ...src, state, migration_cycle: cycle ?? src.migration_cycle, state_action_time: this.now() });
  }

  // ---- sources (4.1) -----------------------------------------------------------

  async registerSource(body: unknown): Promise<{ id: string }> {
    const id = (body as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string' && id !== '') {
      const parsed = parseBody(sourceBodySchema, body, 'POST /v3/sources');
      return this.store.transact(() => {
        const src = this.store.get<SourceRecord>('sources', id);
        if (!src) throw badRequest('SMS.0507', `Source server details deleted (${id}). Register it with SMS again (POST /v3/sources without an id).`, [id]);
        const { id: _omit, state, migration_cycle, ...rest } = parsed;
        const next: SourceRecord = {
          ...src,
          body: { ...src.body, ...stripUndefined(rest) },
          // The name belongs to the operator once registered (PUT /v3/sources/{id}).
          name: src.name,
          state: state ?? src.state,
          migration_cycle: migration_cycle ?? src.migration_cycle,
          state_action_time: state || migration_cycle ? this.now() : src.state_action_time,
        };
        this.visit(id);
        return { ops: [put('sources', id, next)], result: { id } };
      });
    }
    // Table 4-8 marks every field as not mandatory: any valid body registers.
    const parsed = parseBody(sourceBodySchema, body, 'POST /v3/sources');
    const newId = randomUUID();
    const { id: _omit, state, migration_cycle, ...rest } = parsed;
    const now = this.now();
    const rec: SourceRecord = {
      id: newId,
      body: stripUndefined(rest),
      name: parsed.name || parsed.hostname || newId,
      state: state ?? 'waiting',
      migration_cycle: migration_cycle ?? 'checking',
      add_date: now,
      state_action_time: now,
    };
    await this.store.transact(() => ({ ops: [put('sources', newId, rec)], result: undefined }));
    this.visit(newId);
    return { id: newId };
  }

  listSources(query: URLSearchParams): { count: number; source_servers: Record<string, unknown>[] } {
    const q = parseQuery(sourceListQuerySchema, query, { numbers: ['limit', 'offset'], booleans: ['connected', 'is_consistency_result_exist'] });
    let all = this.store.values<SourceRecord>('sources').sort((a, b) => b.add_date - a.add_date || (a.id < b.id ? -1 : 1));
    if (q.state) all = all.filter((s) => s.state === q.state);
    if (q.name) all = all.filter((s) => s.name.includes(q.name!));
    if (q.id) all = all.filter((s) => s.id === q.id);
    if (q.ip) all = all.filter((s) => s.body.ip === q.ip);
    if (q.migration_cycle) all = all.filter((s) => s.migration_cycle === q.migration_cycle);
    if (q.connected !== undefined) all = all.filter((s) => this.connected(s.id) === q.connected);
    const offset = q.offset ?? 0;
    // Table 4-19: "0 indicates that the default value 200 is used".
    const limit = q.limit || 200;
    return {
      count: all.length,
      source_servers: all.slice(offset, offset + limit).map((s) => {
        const task = this.currentTask(s.id);
        return sourceSummaryView(s, task, this.connected(s.id), this.lastVisit.get(s.id) ?? null, task && this.taskFacts(task));
      }),
    };
  }

  showSource(id: string): Record<string, unknown> {
    const s = this.source(id);
    const task = this.currentTask(id);
    return sourceDetailsView(s, task, this.connected(id), this.lastVisit.get(id) ?? null, task && this.taskFacts(task));
  }

  overview(): Record<string, number> {
    const counts: Record<string, number> = {
      unavailable: 0, waiting: 0, initialize: 0, replicate: 0, syncing: 0, stopping: 0, stopped: 0,
      deleting: 0, error: 0, cloning: 0, cutovering: 0, finished: 0, unconfigured: 0,
    };
    for (const s of this.store.values<SourceRecord>('sources')) {
      counts[s.state] = (counts[s.state] ?? 0) + 1;
      if (!this.currentTask(s.id)) counts.unconfigured!++;
    }
    return counts;
  }

  migrationErrors(query: URLSearchParams): { count: number; migration_errors: Record<string, unknown>[] } {
    const q = parseQuery(z.object({ limit: z.int().min(0).max(100).optional(), offset: z.int().min(0).max(65_535).optional() }).loose(), query, {
      numbers: ['limit', 'offset'],
    });
    const failed = this.store.values<SourceRecord>('sources').filter((s) => s.state === 'error');
    const offset = q.offset ?? 0;
    return {
      count: failed.length,
      migration_errors: failed.slice(offset, offset + (q.limit ?? 50)).map((s) => {
        const t = this.currentTask(s.id);
        return {
          source_id: s.id,
          source_ip: s.body.ip ?? null,
          target_ip: t?.migration_ip ?? null,
          name: s.name,
          host_name: s.body.hostname ?? null,
          error_json: t?.error_json ?? '',
        };
      }),
    };
  }

  async updateSource(id: string, body: unknown): Promise<void> {
    const u = parseBody(sourceUpdateSchema, body, 'PUT /v3/sources/{source_id}');
    if (u.name !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(u.name)) {
      throw badRequest(u.name.length === 0 || u.name.length > 64 ? 'SMS.6002' : 'SMS.6003',
        'Source server name must consist of 1 to 64 letters, digits, underscores (_), dots (.) and hyphens (-).', [u.name]);
    }
    await this.store.transact(() => {
      const src = this.source(id);
      const diskCount = ((src.body.disks as unknown[] | undefined) ?? []).length;
      // A choice for a volume that does not exist would be stored and never shown: refuse it instead.
      const disks = (src.body.disks as { physical_volumes?: unknown[] }[] | undefined) ?? [];
      for (const d of u.disks ?? []) {
        if (!/^\d+$/.test(d.id) || Number(d.id) >= diskCount) throw badRequest('SMS.0411', `Disk ${d.id} does not exist.`, [d.id]);
        const parts = disks[Number(d.id)]?.physical_volumes?.length ?? 0;
        for (const pv of d.physical_volumes ?? []) {
          const m = pv.id === undefined ? null : new RegExp(`^${d.id}_(\\d+)$`).exec(pv.id);
          if (!m || Number(m[1]) >= parts) throw badRequest('SMS.9001', `Invalid parameters: partition ${pv.id ?? '(no id)'} does not exist on disk ${d.id} (its partitions are ${d.id}_0 … ${d.id}_${Math.max(0, parts - 1)}).`, [String(pv.id)]);
        }
        checkDiskAdjustment(d, (src.body.disks as Record<string, unknown>[])[Number(d.id)]!);
      }
      const vgByName = new Map(((src.body.volume_groups as { name?: string; logical_volumes?: { name?: string }[] }[] | undefined) ?? []).map((v) => [v.name, v]));
      const vgs = updateVolumeGroups(u);
      for (const v of vgs ?? []) {
        const vg = vgByName.get(v.id);
        if (!vg) throw badRequest('SMS.9001', `Invalid parameters: volume group ${v.id} does not exist.`, [v.id]);
        const lvNames = new Set((vg.logical_volumes ?? []).map((l) => l.name));
        for (const lv of v.logical_volumes ?? []) {
          if (!lvNames.has(lv.id)) throw badRequest('SMS.9001', `Invalid parameters: logical volume ${lv.id} does not exist in volume group ${v.id}.`, [lv.id]);
        }
        checkVolumeGroupAdjustment(v, vg as Record<string, unknown>);
      }
      const next: SourceRecord = {
        ...src,
        name: u.name ?? src.name,
        migprojectid: u.migprojectid ?? src.migprojectid,
        adjustments:
          u.disks || vgs
            ? {
                disks: (u.disks ?? src.adjustments?.disks ?? []) as Record<string, unknown>[],
                volume_group_s: (vgs ?? src.adjustments?.volume_group_s ?? []) as Record<string, unknown>[],
              }
            : src.adjustments,
      };
      return { ops: [put('sources', id, next)], result: undefined };
    });
  }

  async updateDiskInfo(id: string, body: unknown): Promise<void> {
    const d = parseBody(diskInfoSchema, body, 'PUT /v3/sources/{source_id}/diskinfo');
    await this.store.transact(() => {
      const src = this.source(id);
      const nextBody = { ...src.body };
      if (d.disks) nextBody.disks = d.disks;
      if (d.volumegroups) nextBody.volume_groups = d.volumegroups;
      if (d.btrfs_list) nextBody.btrfs_list = d.btrfs_list;
      // Choices made for disks that no longer exist do not carry over.
      return { ops: [put('sources', id, { ...src, body: nextBody, adjustments: d.disks ? undefined : src.adjustments })], result: undefined };
    });
    this.visit(id);
  }

  /**
   * PUT /v3/sources/{id}/changestate (4.1.6). Both fields are optional in
   * table 4-52, but at least one must be there (SMS.7726) and none may be
   * empty (SMS.7727). Given both, they must be a pair SMS.7728 allows. Given
   * only copystate, the stage stays if it allows the new state, else becomes
   * the stage that state belongs to; given only migrationcycle, the state
   * must fit the new stage.
   */
  async changeState(id: string, body: unknown): Promise<void> {
    const raw = (body ?? {}) as Record<string, unknown>;
    const given = (v: unknown) => v !== undefined && v !== null;
    if (!given(raw.copystate) && !given(raw.migrationcycle)) {
      throw badRequest('SMS.7726', 'Failed to update the migration status or stage for the source server. Field copystate or migrationcycle is missing in the request body.');
    }
    if (raw.copystate === '' || raw.migrationcycle === '') {
      throw badRequest('SMS.7727', 'Failed to update the migration status or stage for the source server. Field copystate or migrationcycle in the request body is empty.');
    }
    const c = parseBody(changeStateSchema, body, 'PUT /v3/sources/{source_id}/changestate');
    const current = this.source(id);
    const state: SourceState = c.copystate ? COPY_STATE_TO_SOURCE_STATE[c.copystate] : current.state;
    const cycle: MigrationCycle = c.migrationcycle ?? (CYCLE_ALLOWS[current.migration_cycle].includes(state) ? current.migration_cycle : HOME_CYCLE[state] ?? current.migration_cycle);
    if (!CYCLE_ALLOWS[cycle].includes(state)) {
      throw badRequest(
        'SMS.7728',
        `Change server replication state or migration cycle failed. Values of copystate and migrationcycle do not match: migrationcycle ${cycle} allows copystate ${CYCLE_ALLOWS[cycle].map((s) => s.toUpperCase()).join(', ')}, not ${state.toUpperCase()}.`,
        [state.toUpperCase(), cycle],
      );
    }
    await this.store.transact(() => {
      const src = this.source(id);
      const ops: Op[] = [this.sourceStateOps(src, state, cycle)];
      const task = this.currentTask(id);
      if (task) {
        const next = taskStateAfterCopyState(state, task.state);
        if (next) ops.push(put('tasks', task.id, withTaskState(task, next, this.now())));
      }
      return { ops, result: undefined };
    });
    this.visit(id);
  }

  async deleteSource(id: string, force: boolean): Promise<void> {
    await this.store.transact(() => ({ ops: this.deleteSourceOps(id, force), result: undefined }));
    this.lastVisit.delete(id);
  }

  async deleteSources(body: unknown): Promise<void> {
    const { ids } = parseBody(idsBodySchema, body, 'POST /v3/sources/delete');
    await this.store.transact(() => ({ ops: [...new Set(ids)].flatMap((id) => this.deleteSourceOps(id, false)), result: undefined }));
    for (const id of ids) this.lastVisit.delete(id);
  }

  /**
   * A source with a running task cannot be deleted; with other tasks only
   * when forced, which deletes the tasks, their commands and progress too.
   */
  private deleteSourceOps(id: string, force: boolean): Op[] {
    this.source(id);
    const tasks = this.tasksOf(id);
    const running = tasks.filter((t) => RUNNING_TASK_STATES.includes(t.state));
    if (running.length) {
      throw badRequest('SMS.7601', `Failed to delete the source server because a migration task is running on it (task ${running.map((t) => `${t.id} ${t.state}`).join(', ')}); stop it first.`, running.map((t) => t.id));
    }
    if (tasks.length && !force) {
      throw badRequest('SMS.7601', `Failed to delete the source server: it has migration tasks (${tasks.map((t) => t.id).join(', ')}); delete them first or delete the source with force=true.`, tasks.map((t) => t.id));
    }
    const ops: Op[] = [del('sources', id)];
    for (const t of tasks) ops.push(...this.taskRemovalOps(t));
    for (const c of this.commandsOf(id)) ops.push(del('commands', c.id));
    return ops;
  }

  // ---- commands (4.3) ------------------------------------------------------------

  /** GET /v3/sources/{id}/command: hands out the oldest queued command once, or {} when there is none. */
  async nextCommand(sourceId: string): Promise<Record<string, unknown>> {
    this.source(sourceId);
    this.visit(sourceId);
    return this.store.transact<Record<string, unknown>>(() => {
      const next = this.commandsOf(sourceId).find((c) => c.state === 'queued');
      if (!next) return { ops: [], result: {} };
      const delivered: CommandRecord = { ...next, state: 'delivered', delivered_at: this.now() };
      return {
        ops: [put('commands', next.id, delivered)],
        result: {
          command_name: next.command_name,
          command_param: { ...(next.task_id && { task_id: next.task_id }), ...(next.bucket && { bucket: next.bucket }) },
        },
      };
    });
  }

  async commandResult(sourceId: string, body: unknown): Promise<void> {
    const raw = (body ?? {}) as Record<string, unknown>;
    if (typeof raw !== 'object' || raw.command_name === undefined || raw.command_name === '') throw badRequest('SMS.6020', 'The command name is missing.');
    if (raw.result !== 'success' && raw.result !== 'fail') throw badRequest('SMS.6022', 'Incorrect result format: result must be "success" or "fail".', [String(raw.result)]);
    if (raw.result_detail === null || typeof raw.result_detail !== 'object' || Array.isArray(raw.result_detail)) {
      throw badRequest('SMS.6023', 'Incorrect result_detail format: it must be a JSON object.');
    }
    const r = parseBody(commandResultSchema, body, 'POST /v3/sources/{server_id}/command_result');
    this.visit(sourceId);
    await this.store.transact(() => {
      this.source(sourceId);
      const cmds = this.commandsOf(sourceId);
      const cmd = cmds.find((c) => c.state === 'delivered' && c.command_name === r.command_name);
      if (!cmd) {
        throw badRequest('SMS.6021', `The command from the Agent is inconsistent with that from SMS: no ${r.command_name} command is awaiting a result for this source.`, [r.command_name]);
      }
      const now = this.now();
      const ops: Op[] = [put('commands', cmd.id, { ...cmd, state: 'done', done_at: now, result: r.result, result_detail: r.result_detail })];
      const done = cmds.filter((c) => c.state === 'done');
      for (const old of done.slice(0, Math.max(0, done.length + 1 - DONE_COMMANDS_KEPT))) ops.push(del('commands', old.id));
      const task = cmd.task_id ? this.store.get<TaskRecord>('tasks', cmd.task_id) : undefined;
      const src = this.store.get<SourceRecord>('sources', sourceId)!;
      if (task) {
        const detail = JSON.stringify(r.result_detail).slice(0, 1024);
        if (r.result === 'fail' && (cmd.command_name === 'START' || cmd.command_name === 'SYNC')) {
          ops.push(put('tasks', task.id, { ...withTaskState(task, 'MIGRATE_FAIL', now), error_json: detail }));
          ops.push(this.sourceStateOps(src, 'error'));
        } else if (cmd.command_name === 'STOP' && task.state === 'ABORTING') {
          if (r.result === 'success') {
            ops.push(put('tasks', task.id, withTaskState(task, 'ABORT', now)));
            ops.push(this.sourceStateOps(src, 'stopped'));
          } else {
            ops.push(put('tasks', task.id, { ...withTaskState(task, 'RUNNING', now), error_json: detail }));
          }
        }
      }
      return { ops, result: undefined };
    });
  }

  /** Every command of a source, newest last (ferry extension for operators and tests). */
  commands(sourceId: string): { commands: CommandRecord[] } {
    this.source(sourceId);
    return { commands: this.commandsOf(sourceId) };
  }

  // ---- tasks (4.2) ------------------------------------------------------------------

  async createTask(body: unknown): Promise<{ id: string }> {
    if (body !== undefined) assertTargetServer(body);
    const req = parseBody(taskCreateSchema, body, 'POST /v3/tasks');
    const { receiver, ...request } = req;
    const id = randomUUID();
    return this.store.transact(() => {
      const src = this.source(req.source_server.id);
      if (src.body.os_type && req.os_type !== src.body.os_type) {
        throw badRequest('SMS.6610', `The OS in the task (${req.os_type}) conflicts with the source server OS (${String(src.body.os_type)}).`, [req.os_type]);
      }
      const existing = this.tasksOf(src.id);
      if (existing.length) {
        throw badRequest('SMS.6005', `The status of the source server does not meet the requirements: it already has migration task ${existing[0]!.id}; delete that task first.`, [existing[0]!.id]);
      }
      const clash = this.store.values<TaskRecord>('tasks').find((t) => req.target_server.vm_id !== '' && t.request.target_server.vm_id === req.target_server.vm_id);
      if (clash) throw badRequest('SMS.6615', `The target server has been added to a migration task (${clash.id}).`, [req.target_server.vm_id]);
      const now = this.now();
      const task: TaskRecord = {
        id,
        name: req.name,
        type: req.type,
        os_type: req.os_type,
        state: 'READY',
        source_id: src.id,
        create_date: now,
        start_date: null,
        finish_date: null,
        request,
        ...(receiver ? { receiver } : {}),
        priority: req.priority ?? 1,
        speed_limit: req.speed_limit ?? 0,
        speed_limits: [],
        migration_ip: req.migration_ip ?? receiver?.host ?? null,
        user_op: 'REPLICATE',
        error_json: '',
        metrics: {},
        sub_tasks: [],
        logs: [],
      };
      const ops: Op[] = [this.sourceStateOps(src, 'waiting', 'setting')];
      if (req.auto_start) {
        const c = this.counters();
        ops.push(this.queueCommand(c, src.id, 'START', id), put('meta', 'counters', c));
        ops.push(put('tasks', id, { ...withTaskState(task, 'RUNNING', now), start_date: now }));
        ops[0] = this.sourceStateOps(src, 'initialize', 'replicating');
      } else {
        ops.push(put('tasks', id, task));
      }
      return { ops, result: { id } };
    });
  }

  listTasks(query: URLSearchParams): { count: number; tasks: Record<string, unknown>[] } {
    const q = parseQuery(taskListQuerySchema, query, { numbers: ['limit', 'offset'] });
    let all = this.store.values<TaskRecord>('tasks').sort((a, b) => b.create_date - a.create_date || (a.id < b.id ? -1 : 1));
    if (q.state) all = all.filter((t) => t.state === q.state);
    if (q.name) all = all.filter((t) => t.name.includes(q.name!));
    if (q.id) all = all.filter((t) => t.id === q.id);
    if (q.source_server_id) all = all.filter((t) => t.source_id === q.source_server_id);
    const offset = q.offset ?? 0;
    const limit = q.limit ?? 100;
    return {
      count: all.length,
      tasks: all.slice(offset, offset + limit).map((t) => taskSummaryView(t, this.store.get<SourceRecord>('sources', t.source_id), this.taskFacts(t))),
    };
  }

  showTask(id: string): Record<string, unknown> {
    const t = this.task(id);
    return taskDetailsView(t, this.store.get<SourceRecord>('sources', t.source_id), this.connected(t.source_id), this.taskFacts(t));
  }

  /** What the views derive from the command queue: the state of the task's last log collection. */
  private taskFacts(t: TaskRecord): TaskFacts {
    const last = this.commandsOf(t.source_id).filter((c) => c.task_id === t.id && c.command_name === 'UPLOAD_LOG').at(-1);
    return { logCollectStatus: logCollectStatus(last), logBucket: last?.bucket ?? null };
  }

  /**
   * PUT /v3/tasks/{id} (4.2.6). Top-level nulls mean "not given" (the
   * document's own example sends null for fields it does not set). Type and
   * OS may change only before the task first starts.
   */
  async updateTask(id: string, body: unknown): Promise<{ id: string }> {
    const cleaned = body && typeof body === 'object' && !Array.isArray(body)
      ? Object.fromEntries(Object.entries(body as Record<string, unknown>).filter(([, v]) => v !== null))
      : body;
    const u = parseBody(taskUpdateSchema, cleaned, 'PUT /v3/tasks/{task_id}');
    if (u.state !== undefined && !(TASK_STATES as readonly string[]).includes(u.state)) {
      throw badRequest('SMS.9001', `Invalid parameters: state must be one of ${TASK_STATES.join(', ')}.`, [u.state]);
    }
    return this.store.transact(() => {
      const t = this.task(id);
      const neverStarted = t.state === 'READY' && t.start_date === null;
      if (u.type !== undefined && u.type !== t.type && !neverStarted) {
        throw badRequest('SMS.7712', `Invalid task type: the type of task ${id} cannot change once it has started.`, [u.type]);
      }
      if (u.os_type !== undefined && u.os_type !== t.os_type) {
        const src = this.store.get<SourceRecord>('sources', t.source_id);
        if (!neverStarted || (src?.body.os_type && src.body.os_type !== u.os_type)) {
          throw badRequest('SMS.6610', `The OS in the task (${u.os_type}) conflicts with the source server OS (${String(src?.body.os_type)}).`, [u.os_type]);
        }
      }
      let next: TaskRecord = {
        ...t,
        name: u.name ?? t.name,
        type: u.type ?? t.type,
        os_type: u.os_type ?? t.os_type,
        priority: u.priority ?? t.priority,
        speed_limit: u.speed_limit ?? t.speed_limit,
        migration_ip: u.migration_ip ?? t.migration_ip,
        error_json: u.error_json ?? t.error_json,
        request: {
          ...t.request,
          ...(u.start_target_server !== undefined ? { start_target_server: u.start_target_server } : {}),
          ...(u.region_id !== undefined ? { region_id: u.region_id } : {}),
          ...(u.region_name !== undefined ? { region_name: u.region_name } : {}),
          ...(u.project_id !== undefined ? { project_id: u.project_id } : {}),
          ...(u.project_name !== undefined ? { project_name: u.project_name } : {}),
          ...(u.vm_template_id !== undefined ? { vm_template_id: u.vm_template_id } : {}),
          ...(u.exist_server !== undefined ? { exist_server: u.exist_server } : {}),
        },
        metrics: { ...t.metrics, ...(u.migrate_speed !== undefined ? { migrate_speed: u.migrate_speed } : {}) },
      };
      // A RUNNING/SYNCING report racing an operator's stop is stale: the stop wins.
      const stale = (t.state === 'ABORTING' || t.state === 'ABORT') && (u.state === 'RUNNING' || u.state === 'SYNCING');
      if (u.state !== undefined && u.state !== t.state && !stale) {
        next = withTaskState(next, u.state as TaskState, this.now());
        if (next.start_date === null && (u.state === 'RUNNING' || u.state === 'SYNCING')) next.start_date = this.now();
      }
      return { ops: [put('tasks', id, next)], result: { id } };
    });
  }

  async deleteTask(id: string): Promise<void> {
    await this.store.transact(() => ({ ops: this.deleteTaskOps(id), result: undefined }));
  }

  async deleteTasks(body: unknown): Promise<void> {
    const { ids } = parseBody(idsBodySchema, body, 'POST /v3/tasks/delete');
    await this.store.transact(() => {
      const ops: Op[] = [];
      const c = this.counters();
      for (const id of new Set(ids)) ops.push(...this.deleteTaskOps(id, c));
      return { ops, result: undefined };
    });
  }

  /** Section 4.2.4: deletable when the agent is disconnected or the task is not in progress. Queues DELETE for the agent. */
  private deleteTaskOps(id: string, shared?: Counters): Op[] {
    const t = this.task(id);
    if (!DELETABLE_TASK_STATES.includes(t.state) && this.connected(t.source_id)) {
      throw badRequest('SMS.7719', `Tasks in current state cannot be deleted: task ${id} is ${t.state}; stop it first.`, [id, t.state]);
    }
    const ops = this.taskRemovalOps(t);
    const src = this.store.get<SourceRecord>('sources', t.source_id);
    if (src) {
      const c = shared ?? this.counters();
      ops.push(this.queueCommand(c, src.id, 'DELETE', id), put('meta', 'counters', c));
      ops.push(this.sourceStateOps(src, 'waiting', 'checking'));
    }
    return ops;
  }

  /** Removes a task, its undelivered commands and its progress history. */
  private taskRemovalOps(t: TaskRecord): Op[] {
    const ops: Op[] = [del('tasks', t.id)];
    for (const c of this.store.values<CommandRecord>('commands')) {
      if (c.task_id === t.id && c.state === 'queued') ops.push(del('commands', c.id));
    }
    const idx = this.store.get<HistoryIndex>('meta', `history/${t.id}`);
    if (idx) {
      for (let n = idx.first; n < idx.next; n++) ops.push(del('progress', `${t.id}/${pad(n)}`));
      ops.push(del('meta', `history/${t.id}`));
    }
    return ops;
  }

  /** POST /v3/tasks/{id}/action: start/stop/sync/restart become commands on the source's queue. */
  async taskAction(id: string, body: unknown): Promise<void> {
    const a = parseBody(taskActionSchema, body, 'POST /v3/tasks/{task_id}/action');
    await this.store.transact(() => {
      const t = this.task(id);
      const src = this.source(t.source_id);
      const now = this.now();
      const c = this.counters();
      const ops: Op[] = [];
      const pending = this.commandsOf(src.id).filter((x) => x.task_id === id && x.state === 'queued');
      switch (a.operation) {
        case 'start':
        case 'restart': {
          const allowed = a.operation === 'start' ? STARTABLE_TASK_STATES : RESTARTABLE_TASK_STATES;
          if (!allowed.includes(t.state)) {
            throw a.operation === 'start'
              ? badRequest('SMS.7713', `Only tasks in the Ready for next, Paused, or Error state can be started; task ${id} is ${t.state}.`, [t.state])
              : badRequest('SMS.7722', `Only tasks whose migration has ended (MIGRATE_SUCCESS, MIGRATE_FAIL, ABORT) can be restarted; task ${id} is ${t.state}.`, [t.state]);
          }
          const sub = a.operation === 'restart' ? [] : t.sub_tasks;
          ops.push(put('tasks', id, {
            ...withTaskState(t, 'RUNNING', now),
            start_date: t.start_date && a.operation === 'start' ? t.start_date : now,
            user_op: 'REPLICATE',
            error_json: '',
            sub_tasks: sub,
          }));
          ops.push(this.queueCommand(c, src.id, 'START', id));
          ops.push(this.sourceStateOps(src, 'initialize', 'replicating'));
          break;
        }
        case 'stop': {
          if (!STOPPABLE_TASK_STATES.includes(t.state)) throw badRequest('SMS.7714', `Only running tasks can be paused; task ${id} is ${t.state}.`, [t.state]);
          const undeliveredStart = pending.find((x) => x.command_name === 'START' || x.command_name === 'SYNC');
          if (undeliveredStart) {
            // The agent never saw the start: withdraw it instead of sending STOP.
            ops.push(del('commands', undeliveredStart.id));
            ops.push(put('tasks', id, withTaskState(t, 'ABORT', now)));
            ops.push(this.sourceStateOps(src, 'stopped'));
          } else {
            ops.push(put('tasks', id, withTaskState(t, 'ABORTING', now)));
            ops.push(this.queueCommand(c, src.id, 'STOP', id));
            ops.push(this.sourceStateOps(src, 'stopping'));
          }
          break;
        }
        case 'sync': {
          if (!SYNCABLE_TASK_STATES.includes(t.state)) {
            throw badRequest('SMS.7715', `Only tasks in the Finished state or in the Continuous synchronization stage can be synchronized; task ${id} is ${t.state}.`, [t.state]);
          }
          if (!pending.some((x) => x.command_name === 'SYNC')) ops.push(this.queueCommand(c, src.id, 'SYNC', id));
          ops.push(put('tasks', id, { ...withTaskState(t, 'SYNCING', now), user_op: 'SYNC' }));
          ops.push(this.sourceStateOps(src, 'syncing', 'syncing'));
          break;
        }
        default:
          throw badRequest('SMS.9001', `Invalid parameters: operation ${a.operation} needs a target cloud and is not supported by the local control plane (use start, stop, sync or restart).`, [a.operation]);
      }
      ops.push(put('meta', 'counters', c));
      return { ops, result: undefined };
    });
  }

  /**
   * collectLog, POST /v3/tasks/{id}/log with `{log_bucket}` (the SDK's
   * UploadLogRequestBody; also ferry's older POST …/collect-log): asks the
   * task's agent for its logs by queueing UPLOAD_LOG (with the bucket as
   * `command_param.bucket`); the agent answers by uploading the archive to
   * POST /v3/tasks/{id}/log-archive. SMS.7717 before the task ever started,
   * SMS.7716 while a collection is still outstanding.
   */
  async collectLog(id: string, body: unknown = {}): Promise<void> {
    const { log_bucket: bucket } = parseBody(collectLogSchema, body ?? {}, 'POST /v3/tasks/{task_id}/log');
    await this.store.transact(() => {
      const t = this.task(id);
      if (t.start_date === null) throw badRequest('SMS.7717', `Logs can be collected after the migration task is started; task ${id} never started.`, [id]);
      const outstanding = this.commandsOf(t.source_id).find((c) => c.task_id === id && c.command_name === 'UPLOAD_LOG' && c.state !== 'done');
      if (outstanding) throw badRequest('SMS.7716', 'Logs can be collected only after the current log collection is completed.', [outstanding.id]);
      const c = this.counters();
      return { ops: [this.queueCommand(c, t.source_id, 'UPLOAD_LOG', id, bucket), put('meta', 'counters', c)], result: undefined };
    });
  }

  /** PUT /v3/tasks/{id}/progress: validated against table 4-172, folded into the subtask, kept as history. */
  async reportProgress(id: string, body: unknown): Promise<void> {
    const p = parseBody(progressReportSchema, body, 'PUT /v3/tasks/{task_id}/progress');
    await this.store.transact(() => {
      const t = this.task(id);
      this.visit(t.source_id);
      const now = this.now();
      const c = this.counters();
      const subs = [...t.sub_tasks];
      let i = subs.findIndex((s) => s.name === p.subtask_name);
      if (i < 0) {
        c.subtask++;
        subs.push({ id: c.subtask, name: p.subtask_name, progress: 0, start_date: now, end_date: null, migrate_speed: null, user_op: t.user_op, process_trace: null, replicatesize: 0, totalsize: 0 });
        i = subs.length - 1;
      }
      const prev = subs[i]!;
      const restarted = p.progress < prev.progress || (prev.end_date !== null && p.progress < 100);
      subs[i] = {
        ...prev,
        progress: p.progress,
        process_trace: p.process_trace,
        migrate_speed: p.migrate_speed ?? prev.migrate_speed,
        replicatesize: p.replicatesize,
        totalsize: p.totalsize,
        user_op: restarted ? t.user_op : prev.user_op,
        start_date: restarted ? now : (prev.start_date ?? now),
        end_date: p.progress === 100 ? (restarted || prev.end_date === null ? now : prev.end_date) : null,
      };
      const metrics = { ...t.metrics };
      for (const k of ['migrate_speed', 'compress_rate', 'total_cpu_usage', 'agent_cpu_usage', 'total_mem_usage', 'agent_mem_usage', 'total_disk_io', 'agent_disk_io'] as const) {
        if (p[k] !== undefined) metrics[k] = p[k];
      }
      if (p.remain_time !== undefined) metrics.remain_seconds = p.remain_time;
      const idx = this.store.get<HistoryIndex>('meta', `history/${id}`) ?? { first: 0, next: 0 };
      const entry: ProgressEntry = { task_id: id, received_at: now, report: p };
      const ops: Op[] = [put('tasks', id, { ...t, sub_tasks: subs, metrics }), put('progress', `${id}/${pad(idx.next)}`, entry)];
      const nextIdx = { first: idx.first, next: idx.next + 1 };
      while (nextIdx.next - nextIdx.first > PROGRESS_HISTORY_CAP) ops.push(del('progress', `${id}/${pad(nextIdx.first++)}`));
      ops.push(put('meta', `history/${id}`, nextIdx), put('meta', 'counters', c));
      return { ops, result: undefined };
    });
  }

  /** GET /v3/tasks/{id}/progress-history (ferry extension). */
  progressHistory(id: string, query: URLSearchParams): Record<string, unknown> {
    this.task(id);
    const q = parseQuery(z.object({ subtask: z.string().max(255).optional(), limit: z.int().min(1).max(PROGRESS_HISTORY_CAP).optional() }), query, { numbers: ['limit'] });
    const idx = this.store.get<HistoryIndex>('meta', `history/${id}`) ?? { first: 0, next: 0 };
    const entries: Record<string, unknown>[] = [];
    for (let n = idx.first; n < idx.next; n++) {
      const e = this.store.get<ProgressEntry>('progress', `${id}/${pad(n)}`);
      if (!e || (q.subtask && e.report.subtask_name !== q.subtask)) continue;
      entries.push({ seq: n, received_at: e.received_at, ...e.report });
    }
    const limited = q.limit ? entries.slice(-q.limit) : entries;
    return { task_id: id, count: limited.length, progress: limited };
  }

  getSpeedLimit(id: string): { speed_limit: unknown[] } {
    return { speed_limit: this.task(id).speed_limits };
  }

  async setSpeedLimit(id: string, body: unknown): Promise<void> {
    const s = parseBody(speedLimitSetSchema, body, 'POST /v3/tasks/{task_id}/speed-limit');
    const minutes = (hhmm: string) => {
      const [h, m] = hhmm.split(':').map(Number);
      return h! * 60 + m!;
    };
    const spans = s.speed_limit.map((seg, i) => ({ i, start: minutes(seg.start), end: minutes(seg.end) })).sort((a, b) => a.start - b.start);
    for (const sp of spans) {
      if (sp.end <= sp.start) throw badRequest('SMS.9001', `Invalid parameters: speed_limit[${sp.i}] ends before it starts.`, [`speed_limit.${sp.i}`]);
    }
    for (let k = 1; k < spans.length; k++) {
      if (spans[k]!.start < spans[k - 1]!.end) {
        throw badRequest('SMS.9001', `Invalid parameters: speed_limit[${spans[k]!.i}] overlaps speed_limit[${spans[k - 1]!.i}].`, [`speed_limit.${spans[k]!.i}`]);
      }
    }
    await this.store.transact(() => {
      const t = this.task(id);
      return { ops: [put('tasks', id, { ...t, speed_limits: s.speed_limit })], result: undefined };
    });
  }

  /**
   * GET /v3/tasks/{id}/certkey (the SDK's showCertKey): the control plane is
   * the task's certificate authority. Any authenticated caller gets a fresh
   * EC P-256 key and a certificate issued to the task's source (CN = source
   * id, valid a year, client and server use), and with `enable_ca_cert=true`
   * the CA certificate to trust. ferry extension: when the task was created
   * with a receiver, `receiver` carries its host (default: migration_ip),
   * port, fingerprint and join token.
   */
  async certKey(id: string, query: URLSearchParams): Promise<Record<string, unknown>> {
    const q = parseQuery(certKeyQuerySchema, query, { booleans: ['enable_ca_cert'] });
    const t = this.task(id);
    if (!this.options.ca) throw badRequest('SMS.0511', 'Failed to obtain the private key. Cause: this control plane has no certificate authority.');
    const src = this.store.get<SourceRecord>('sources', t.source_id);
    const altNames = [src?.body.ip, src?.body.hostname].filter((n): n is string => typeof n === 'string' && n !== '');
    const issued = await this.options.ca.issue(t.source_id, { altNames });
    return {
      cert: issued.cert,
      private_key: issued.key,
      ...(q.enable_ca_cert && { ca: this.options.ca.cert }),
      ...(t.receiver && {
        receiver: { host: t.receiver.host ?? t.migration_ip ?? null, port: t.receiver.port, fingerprint: t.receiver.fingerprint, join_token: t.receiver.join_token },
      }),
    };
  }

  /** POST /v3/tasks/{id}/log-archive (ferry extension): keeps an uploaded log archive under DIR/logs/<task>/. */
  async storeLog(id: string, upload: { file: string; bytes: number; sha256: string } | undefined): Promise<Record<string, unknown>> {
    this.task(id);
    if (!upload || upload.bytes === 0) throw badRequest('SMS.0503', 'Log upload failed. Cause: the request carried no archive.');
    const dir = join(this.options.dataDir, 'logs', id);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const name = `${new Date(this.now()).toISOString().replace(/[:.]/g, '-')}-${upload.sha256.slice(0, 12)}.tar.gz`;
    const fh = await open(upload.file, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(upload.file, join(dir, name));
    await fsyncDir(dir);
    const rec = { file: join('logs', id, name), bytes: upload.bytes, sha256: upload.sha256, received_at: this.now() };
    await this.store.transact(() => {
      const t = this.task(id);
      return { ops: [put('tasks', id, { ...t, logs: [...t.logs, rec].slice(-20) })], result: undefined };
    });
    return rec;
  }
}

function withTaskState(t: TaskRecord, state: TaskState, now: number): TaskRecord {
  const ended = state === 'MIGRATE_SUCCESS' || state === 'MIGRATE_FAIL' || state === 'ABORT';
  return { ...t, state, finish_date: ended ? now : state === 'RUNNING' || state === 'SYNCING' ? null : t.finish_date };
}

function stripUndefined<T extends Record<string, unknown>>(o: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Turns query parameters into the schema's types (numbers, booleans); a bad one is 400 SMS.9001. */
function parseQuery<S extends z.ZodType>(schema: S, query: URLSearchParams, kinds: { numbers?: string[]; booleans?: string[] }): z.infer<S> {
  const raw: Record<string, unknown> = {};
  for (const [k, v] of query) {
    if (kinds.numbers?.includes(k)) raw[k] = /^\d+$/.test(v) ? Number(v) : v;
    else if (kinds.booleans?.includes(k)) raw[k] = v === 'true' ? true : v === 'false' ? false : v;
    else raw[k] = v;
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const params = r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ApiError(400, 'SMS.9001', `Invalid parameters: ${params[0]}`, params);
  }
  return r.data;
}
