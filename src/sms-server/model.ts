// What the local control plane keeps per source, task and command (zod
// schemas of the persisted records), the documented state rules, and the
// views that turn records into SMS response bodies (tables 4-22, 4-63,
// 4-112, 4-133). No I/O here.

import { z } from 'zod';
import {
  LOG_COLLECT_STATUSES,
  MIGRATION_CYCLES,
  SOURCE_STATES,
  TASK_STATES,
  speedLimitSegmentSchema,
  taskCreateSchema,
  taskReceiverSchema,
  type MigrationCycle,
  type SourceState,
  type TaskState,
} from '../sms/schemas/index.js';

export const sourceRecordSchema = z.object({
  id: z.string(),
  /** The registration body as last reported (POST /v3/sources, PUT diskinfo). */
  body: z.record(z.string(), z.unknown()),
  name: z.string(),
  state: z.enum(SOURCE_STATES),
  migration_cycle: z.enum(MIGRATION_CYCLES),
  add_date: z.number(),
  state_action_time: z.number(),
  migprojectid: z.string().optional(),
  /** PUT /v3/sources/{id} choices, by disk / volume-group id. */
  adjustments: z
    .object({
      disks: z.array(z.record(z.string(), z.unknown())).default([]),
      volume_group_s: z.array(z.record(z.string(), z.unknown())).default([]),
    })
    .optional(),
});
export type SourceRecord = z.infer<typeof sourceRecordSchema>;

export const subTaskRecordSchema = z.object({
  id: z.number(),
  name: z.string(),
  progress: z.number(),
  start_date: z.number().nullable(),
  end_date: z.number().nullable(),
  migrate_speed: z.number().nullable(),
  user_op: z.string(),
  process_trace: z.string().nullable(),
  replicatesize: z.number(),
  totalsize: z.number(),
});
export type SubTaskRecord = z.infer<typeof subTaskRecordSchema>;

export const taskRecordSchema = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(['MIGRATE_FILE', 'MIGRATE_BLOCK']),
  os_type: z.string(),
  state: z.enum(TASK_STATES),
  source_id: z.string(),
  create_date: z.number(),
  start_date: z.number().nullable(),
  finish_date: z.number().nullable(),
  /** The creation body without the receiver (region, project, target server …). */
  request: taskCreateSchema.omit({ receiver: true }),
  receiver: taskReceiverSchema.optional(),
  priority: z.number(),
  speed_limit: z.number(),
  speed_limits: z.array(speedLimitSegmentSchema),
  migration_ip: z.string().nullable(),
  user_op: z.string(),
  error_json: z.string(),
  metrics: z.record(z.string(), z.number()),
  sub_tasks: z.array(subTaskRecordSchema),
  logs: z.array(z.object({ file: z.string(), bytes: z.number(), sha256: z.string(), received_at: z.number() })),
});
export type TaskRecord = z.infer<typeof taskRecordSchema>;

export const COMMAND_NAMES = ['START', 'STOP', 'SYNC', 'DELETE', 'UPLOAD_LOG'] as const;
export type QueuedCommandName = (typeof COMMAND_NAMES)[number];
export type LogCollectStatus = (typeof LOG_COLLECT_STATUSES)[number];

export const commandRecordSchema = z.object({
  id: z.string(),
  source_id: z.string(),
  command_name: z.enum(COMMAND_NAMES),
  task_id: z.string().nullable(),
  state: z.enum(['queued', 'delivered', 'done']),
  created_at: z.number(),
  delivered_at: z.number().nullable(),
  done_at: z.number().nullable(),
  result: z.enum(['success', 'fail']).nullable(),
  result_detail: z.record(z.string(), z.unknown()).nullable(),
  /** UPLOAD_LOG: the bucket collectLog named (`log_bucket`), handed to the agent as `command_param.bucket`. */
  bucket: z.string().nullish(),
});
export type CommandRecord = z.infer<typeof commandRecordSchema>;

export const progressEntrySchema = z.object({
  task_id: z.string(),
  received_at: z.number(),
  report: z.record(z.string(), z.unknown()),
});
export type ProgressEntry = z.infer<typeof progressEntrySchema>;

// ---- state rules ----------------------------------------------------------

/** Tasks that count as running: their source cannot be deleted, even by force (compare SMC DeleteSourceServer). */
export const RUNNING_TASK_STATES: readonly TaskState[] = ['RUNNING', 'SYNCING', 'ABORTING', 'SYNC_F_ROLLBACKING'];
/** Section 4.2.4: "Verification failed, Ready for next, Finished, Error, or Paused" (or the agent is disconnected). */
export const DELETABLE_TASK_STATES: readonly TaskState[] = ['READY', 'MIGRATE_SUCCESS', 'MIGRATE_FAIL', 'ABORT', 'SYNC_F_ROLLBACK_SUCCESS'];
/** SMS.7713: "Only tasks in the Ready for next, Paused, or Error state can be started." */
export const STARTABLE_TASK_STATES: readonly TaskState[] = ['READY', 'ABORT', 'MIGRATE_FAIL', 'SYNC_F_ROLLBACK_SUCCESS'];
/** SMS.7714: "Only running tasks can be paused." */
export const STOPPABLE_TASK_STATES: readonly TaskState[] = ['RUNNING', 'SYNCING'];
/** SMS.7715: "Only tasks in the Finished state or in the Continuous synchronization stage can be synchronized." */
export const SYNCABLE_TASK_STATES: readonly TaskState[] = ['MIGRATE_SUCCESS', 'SYNCING'];
/** SMS.7722: restart needs a task whose migration has ended (successfully, failed or paused). */
export const RESTARTABLE_TASK_STATES: readonly TaskState[] = ['MIGRATE_SUCCESS', 'MIGRATE_FAIL', 'ABORT'];

/**
 * SMS.7728: which `copystate` (as the source `state` it becomes) each
 * `migrationcycle` allows. `unconnected` appears in the rule but is not a
 * documented copystate value, so it cannot occur here.
 */
export const CYCLE_ALLOWS: Record<MigrationCycle, readonly SourceState[]> = {
  checking: ['unavailable', 'waiting'],
  setting: ['waiting'],
  replicating: ['initialize', 'replicate', 'deleting', 'stopping', 'error', 'stopped'],
  syncing: ['syncing', 'cloning', 'deleting', 'stopping', 'error', 'stopped'],
  cutovering: ['cutovering', 'deleting', 'stopping', 'error', 'stopped'],
  cutovered: ['finished', 'deleting', 'stopping', 'error', 'stopped'],
};

/**
 * How the agent's changestate moves the source's current task (a ferry
 * rule: the SMS document leaves it to the service). Only moves that make
 * sense from the task's current state happen; anything else leaves it.
 */
export function taskStateAfterCopyState(copy: SourceState, current: TaskState): TaskState | undefined {
  switch (copy) {
    case 'syncing':
      return current === 'RUNNING' || current === 'MIGRATE_SUCCESS' ? 'SYNCING' : undefined;
    case 'finished':
      return current === 'RUNNING' || current === 'SYNCING' ? 'MIGRATE_SUCCESS' : undefined;
    case 'error':
      return current === 'RUNNING' || current === 'SYNCING' || current === 'ABORTING' ? 'MIGRATE_FAIL' : undefined;
    case 'stopped':
      return current === 'RUNNING' || current === 'SYNCING' || current === 'ABORTING' ? 'ABORT' : undefined;
    default:
      return undefined;
  }
}

// ---- views -----------------------------------------------------------------

/** Every field of the reply table, in its order, with null where the source did not report it. */
function withFields(fields: readonly string[], o: Record<string, unknown>): Record<string, unknown> {
  return { ...Object.fromEntries(fields.map((f) => [f, o[f] ?? null])), ...o };
}
/** Table 4-71 (a partition), table 4-70 (a disk), 4-72 (a volume group), 4-73 (a logical volume), 4-76 (a NIC). */
const PV_FIELDS = ['device_use', 'file_system', 'index', 'mount_point', 'name', 'size', 'used_size', 'inode_size', 'inode_nums', 'uuid', 'size_per_cluster'] as const;
const DISK_FIELDS = ['name', 'partition_style', 'device_use', 'size', 'used_size', 'physical_volumes', 'os_disk', 'relation_name', 'inode_size'] as const;
const VG_FIELDS = ['components', 'free_size', 'logical_volumes', 'name', 'size'] as const;
const LV_FIELDS = ['block_count', 'block_size', 'file_system', 'inode_size', 'inode_nums', 'device_use', 'mount_point', 'name', 'size', 'used_size', 'free_size'] as const;
const NIC_FIELDS = ['name', 'ip', 'ipv6', 'netmask', 'gateway', 'mtu', 'mac', 'id'] as const;
/** Tables 4-136 (a target disk) and 4-137 (a target partition). */
const TARGET_DISK_FIELDS = ['id', 'device_use', 'disk_id', 'name', 'physical_volumes', 'size', 'used_size', 'disk_index', 'os_disk', 'partition_style', 'relation_name'] as const;
const TARGET_PV_FIELDS = ['id', 'device_use', 'file_system', 'index', 'mount_point', 'name', 'size', 'used_size', 'uuid', 'relation_name', 'free_size'] as const;

/** A volume group as reported, with every documented field of it and of its logical volumes. */
function volumeGroupView(vg: Record<string, unknown>): Record<string, unknown> {
  const lvs = ((vg.logical_volumes as Record<string, unknown>[] | undefined) ?? []).map((lv) => withFields(LV_FIELDS, lv));
  return withFields(VG_FIELDS, { ...vg, logical_volumes: lvs });
}

export function networksView(src: SourceRecord): Record<string, unknown>[] {
  return ((src.body.networks as Record<string, unknown>[] | undefined) ?? []).map((n) => withFields(NIC_FIELDS, n));
}

/** Disks of the registration body with ids: disk `i`, partition `i_j` (as SMC numbers devices). */
export function disksView(src: SourceRecord): Record<string, unknown>[] {
  const disks = (src.body.disks as Record<string, unknown>[] | undefined) ?? [];
  const adj = new Map((src.adjustments?.disks ?? []).map((d) => [String(d.id), d]));
  return disks.map((d, i) => {
    const a = adj.get(String(i));
    const pvAdj = new Map(((a?.physical_volumes as Record<string, unknown>[] | undefined) ?? []).map((p) => [String(p.id), p]));
    const pvs = ((d.physical_volumes as Record<string, unknown>[] | undefined) ?? []).map((p, j) => {
      const pa = pvAdj.get(`${i}_${j}`);
      return withFields(PV_FIELDS, { ...p, id: `${i}_${j}`, need_migration: pa?.need_migration ?? true, adjust_size: pa?.adjust_size ?? p.size ?? 0 });
    });
    return withFields(DISK_FIELDS, { ...d, id: String(i), physical_volumes: pvs, need_migration: a?.need_migration ?? true, adjust_size: a?.adjust_size ?? d.size ?? 0 });
  });
}

export function volumeGroupsView(src: SourceRecord): Record<string, unknown>[] {
  const vgs = (src.body.volume_groups as Record<string, unknown>[] | undefined) ?? [];
  const adj = new Map((src.adjustments?.volume_group_s ?? []).map((v) => [String(v.id), v]));
  return vgs.map((vg) => {
    const id = String(vg.name ?? '');
    const a = adj.get(id);
    const lvAdj = new Map(((a?.logical_volumes as Record<string, unknown>[] | undefined) ?? []).map((l) => [String(l.id), l]));
    const lvs = ((vg.logical_volumes as Record<string, unknown>[] | undefined) ?? []).map((lv) => {
      const lid = String(lv.name ?? '');
      const la = lvAdj.get(lid);
      return { ...lv, id: lid, need_migration: la?.need_migration ?? true, adjust_size: la?.adjust_size ?? lv.size ?? 0 };
    });
    return volumeGroupView({ ...vg, id, logical_volumes: lvs, need_migration: a?.need_migration ?? true, adjust_size: a?.adjust_size ?? vg.size ?? 0 });
  });
}

/**
 * What a view needs beyond the records: facts the service derives from the
 * command queue (log collection) and the source's connection.
 */
export interface TaskFacts {
  /** Table 4-112 `log_collect_status`. */
  logCollectStatus: LogCollectStatus;
  /** The bucket of the last collectLog, if it named one. */
  logBucket: string | null;
}

export const NO_TASK_FACTS: TaskFacts = { logCollectStatus: 'INIT', logBucket: null };

/**
 * `log_collect_status` (table 4-112) from the task's last UPLOAD_LOG
 * command: INIT when logs were never asked for, TELL_AGENT_TO_COLLECT while
 * the command waits for the agent, WAIT_AGENT_COLLECT_ACK once delivered,
 * then AGENT_COLLECT_SUCCESS or AGENT_COLLECT_FAIL from its result.
 */
export function logCollectStatus(last: CommandRecord | undefined): LogCollectStatus {
  if (!last) return 'INIT';
  if (last.state === 'queued') return 'TELL_AGENT_TO_COLLECT';
  if (last.state === 'delivered') return 'WAIT_AGENT_COLLECT_ACK';
  return last.result === 'success' ? 'AGENT_COLLECT_SUCCESS' : 'AGENT_COLLECT_FAIL';
}

export function taskBySourceView(t: TaskRecord, facts: TaskFacts = NO_TASK_FACTS): Record<string, unknown> {
  return {
    id: t.id,
    name: t.name,
    type: t.type,
    state: t.state,
    // The table spells it estimate_completion_time, the SDK estimate_complete_time: both are sent.
    estimate_completion_time: null,
    estimate_complete_time: null,
    start_date: t.start_date,
    speed_limit: t.speed_limit,
    migrate_speed: t.metrics.migrate_speed ?? 0,
    compress_rate: t.metrics.compress_rate ?? 0,
    start_target_server: t.request.start_target_server ?? true,
    vm_template_id: t.request.vm_template_id ?? null,
    region_id: t.request.region_id,
    project_name: t.request.project_name,
    project_id: t.request.project_id,
    target_server: { vm_id: t.request.target_server.vm_id, name: t.request.target_server.name },
    log_collect_status: facts.logCollectStatus,
    exist_server: t.request.exist_server ?? false,
    use_public_ip: t.request.use_public_ip ?? true,
    // ferry never clones the target (that needs a target cloud).
    clone_server: null,
    remain_seconds: t.metrics.remain_seconds ?? null,
    log_bucket: facts.logBucket,
    log_expire: null,
    log_upload_time: t.logs.at(-1)?.received_at ?? null,
    log_share_url: null,
  };
}

/**
 * `init_target_server` (tables 4-27 / 4-64): the target ferry would build
 * for this source, which is its own disk and volume-group layout.
 */
export function initTargetServerView(src: SourceRecord): Record<string, unknown> {
  const disks = (src.body.disks as Record<string, unknown>[] | undefined) ?? [];
  return {
    disks: disks.map((d) => ({
      name: d.name ?? null,
      size: d.size ?? 0,
      device_use: d.device_use ?? null,
      used_size: d.used_size ?? 0,
      physical_volumes: ((d.physical_volumes as Record<string, unknown>[] | undefined) ?? []).map((p) => ({
        device_use: p.device_use ?? null,
        file_system: p.file_system ?? null,
        index: p.index ?? null,
        mount_point: p.mount_point ?? null,
        name: p.name ?? null,
        size: p.size ?? 0,
        inode_size: p.inode_size ?? null,
        used_size: p.used_size ?? 0,
        uuid: p.uuid ?? null,
      })),
    })),
    volume_groups: ((src.body.volume_groups as Record<string, unknown>[] | undefined) ?? []).map(volumeGroupView),
  };
}

export function sourceSummaryView(src: SourceRecord, task: TaskRecord | undefined, connected: boolean, lastVisit: number | null, facts: TaskFacts = NO_TASK_FACTS): Record<string, unknown> {
  const b = src.body;
  const sub = task?.sub_tasks ?? [];
  const replicate = sub.reduce((n, s) => n + s.replicatesize, 0);
  const total = sub.reduce((n, s) => n + s.totalsize, 0);
  return {
    id: src.id,
    ip: b.ip ?? null,
    name: src.name,
    enterprise_project_id: '0',
    add_date: src.add_date,
    os_type: b.os_type ?? null,
    os_version: b.os_version ?? null,
    oem_system: b.oem_system ?? false,
    state: src.state,
    connected,
    cpu_quantity: b.cpu_quantity ?? null,
    memory: b.memory ?? null,
    current_task: task ? taskBySourceView(task, facts) : null,
    // Environment checks need the target cloud: ferry runs none (the document's empty list).
    checks: [],
    init_target_server: initTargetServerView(src),
    migration_cycle: src.migration_cycle,
    state_action_time: src.state_action_time,
    stage_action_time: src.state_action_time,
    last_visit_time: lastVisit,
    replicatesize: replicate,
    totalsize: total,
    agent_version: b.agent_version ?? null,
    has_tc: b.has_tc ?? false,
    is_consistency_result_exist: false,
  };
}

export function sourceDetailsView(src: SourceRecord, task: TaskRecord | undefined, connected: boolean, lastVisit: number | null, facts: TaskFacts = NO_TASK_FACTS): Record<string, unknown> {
  return {
    ...src.body,
    ...sourceSummaryView(src, task, connected, lastVisit, facts),
    hostname: src.body.hostname ?? null,
    firmware: src.body.firmware ?? null,
    disks: disksView(src),
    volume_groups: volumeGroupsView(src),
    btrfs_list: src.body.btrfs_list ?? [],
    networks: networksView(src),
    migprojectid: src.migprojectid ?? null,
  };
}

/**
 * Target disks (table 4-136) with the fields the task body does not carry
 * filled in from the source disk each one receives (matched by `disk_id`,
 * then by name, then by position): partition style (unless the task gives
 * one), OS disk, the paired disk's name (`relation_name`), and per partition
 * its uuid, paired name and free space.
 */
function targetDisksView(t: TaskRecord, src: SourceRecord | undefined): Record<string, unknown>[] {
  const sourceDisks = (src?.body.disks as Record<string, unknown>[] | undefined) ?? [];
  return t.request.target_server.disks.map((d, i) => {
    const byId = d.disk_id !== undefined && /^\d+$/.test(d.disk_id) ? sourceDisks[Number(d.disk_id)] : undefined;
    const sd = byId ?? sourceDisks.find((x) => x.name === d.name) ?? sourceDisks[i];
    const sourcePvs = (sd?.physical_volumes as Record<string, unknown>[] | undefined) ?? [];
    return withFields(TARGET_DISK_FIELDS, {
      ...d,
      id: i + 1,
      // disk_id is what the task says (a whole-server task maps it to the receiver's disk of that name), never made up.
      disk_id: d.disk_id ?? null,
      disk_index: String(i),
      os_disk: (sd?.os_disk as boolean | undefined) ?? (d.device_use === 'OS' || sd?.device_use === 'OS'),
      // The task's own partition style (ferry's extension field) first: it is the layout to make.
      partition_style: d.partition_style ?? (sd?.partition_style as string | undefined) ?? null,
      relation_name: (sd?.name as string | undefined) ?? null,
      physical_volumes: d.physical_volumes.map((p, j) => {
        const sp = sourcePvs.find((x) => p.index !== undefined && x.index === p.index) ?? sourcePvs.find((x) => p.name !== undefined && x.name === p.name) ?? sourcePvs[j];
        const size = p.size ?? (sp?.size as number | undefined);
        const used = p.used_size ?? (sp?.used_size as number | undefined);
        return withFields(TARGET_PV_FIELDS, {
          ...p,
          id: (i + 1) * 1000 + j + 1,
          uuid: p.uuid ?? (sp?.uuid as string | undefined) ?? null,
          relation_name: (sp?.name as string | undefined) ?? null,
          free_size: size !== undefined && used !== undefined ? Math.max(0, size - used) : null,
        });
      }),
    });
  });
}

function subTaskView(s: SubTaskRecord): Record<string, unknown> {
  return {
    id: s.id,
    name: s.name,
    progress: s.progress,
    start_date: s.start_date,
    end_date: s.end_date,
    migrate_speed: s.migrate_speed,
    user_op: s.user_op,
    process_trace: s.process_trace,
  };
}

export function taskSummaryView(t: TaskRecord, src: SourceRecord | undefined, facts: TaskFacts = NO_TASK_FACTS): Record<string, unknown> {
  const r = t.request;
  return {
    id: t.id,
    name: t.name,
    type: t.type,
    os_type: t.os_type,
    state: t.state,
    estimate_completion_time: null,
    estimate_complete_time: null,
    create_date: t.create_date,
    priority: t.priority,
    speed_limit: t.speed_limit,
    over_speed_threshold: r.over_speed_threshold ?? null,
    migrate_speed: t.metrics.migrate_speed ?? 0,
    compress_rate: t.metrics.compress_rate ?? 0,
    start_target_server: r.start_target_server ?? true,
    error_json: t.error_json,
    total_time: t.start_date ? Math.round(((t.finish_date ?? Date.now()) - t.start_date) / 1000) : 0,
    migration_ip: t.migration_ip,
    sub_tasks: t.sub_tasks.map(subTaskView),
    source_server: src
      ? {
          id: src.id,
          ip: src.body.ip ?? null,
          name: src.name,
          os_type: src.body.os_type ?? null,
          os_version: src.body.os_version ?? null,
          oem_system: src.body.oem_system ?? false,
          state: src.state,
          migration_cycle: src.migration_cycle,
        }
      : { id: t.source_id },
    enterprise_project_id: '0',
    target_server: {
      id: r.target_server.vm_id,
      vm_id: r.target_server.vm_id,
      name: r.target_server.name,
      ip: t.migration_ip,
      os_type: t.os_type,
      os_version: src?.body.os_version ?? null,
      system_dir: (src?.body.system_dir as string | undefined) ?? null,
      disks: targetDisksView(t, src),
      volume_groups: (r.target_server.volume_groups ?? r.target_server.volume_group_s ?? []).map((vg) => volumeGroupView(vg)),
      btrfs_list: r.target_server.btrfs_list ?? [],
      image_disk_id: null,
      cutovered_snapshot_ids: null,
    },
    log_collect_status: facts.logCollectStatus,
    clone_server: null,
    syncing: r.syncing ?? false,
    // Network checks and special configuration need the target cloud: the document's empty values.
    network_check_info: null,
    special_config: [],
    total_cpu_usage: t.metrics.total_cpu_usage ?? null,
    agent_cpu_usage: t.metrics.agent_cpu_usage ?? null,
    total_mem_usage: t.metrics.total_mem_usage ?? null,
    agent_mem_usage: t.metrics.agent_mem_usage ?? null,
    total_disk_io: t.metrics.total_disk_io ?? null,
    agent_disk_io: t.metrics.agent_disk_io ?? null,
    is_need_consistency_check: r.is_need_consistency_check ?? false,
  };
}

export function taskDetailsView(t: TaskRecord, src: SourceRecord | undefined, connected: boolean, facts: TaskFacts = NO_TASK_FACTS): Record<string, unknown> {
  const r = t.request;
  return {
    ...taskSummaryView(t, src, facts),
    region_id: r.region_id,
    region_name: r.region_name,
    project_name: r.project_name,
    project_id: r.project_id,
    vm_template_id: r.vm_template_id ?? null,
    connected,
    start_date: t.start_date,
    finish_date: t.finish_date,
    float_ip: null,
    remain_seconds: t.metrics.remain_seconds ?? null,
    target_snapshot_id: null,
    exist_server: r.exist_server ?? false,
    use_public_ip: r.use_public_ip ?? true,
    /** ferry extension: whether GET /v3/tasks/{id}/certkey has a receiver to hand out (never the token itself). */
    has_receiver: t.receiver !== undefined,
  };
}
