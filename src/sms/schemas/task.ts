// Migration tasks (section 4.2): create (4.2.1, tables 4-97 to 4-106), list
// (4.2.2, tables 4-109 to 4-118), show (4.2.5, tables 4-133 to 4-141), update
// (4.2.6, table 4-147), delete (4.2.4) and action (4.2.7, table 4-166).
//
// ferry extensions, marked as such: a task may carry the address and
// credentials of its receiver (`receiver`: port, certificate fingerprint, join
// token), given by the operator at creation and read back by the task's own
// source with GET /v3/tasks/{id}/certkey (certkey.ts); `action` also accepts
// `sync` (the agent's SYNC command).

import { z } from 'zod';
import { double, idLike, int, list, long, OS_TYPES, str, TASK_STATES, TASK_TYPES } from './common.js';
import { cloneServerSchema, logicalVolumeViewSchema, physicalVolumeViewSchema } from './source-read.js';
import { logicalVolumeSchema, volumeGroupSchema } from './source.js';

const n = () => z.number().nullish();
const s = () => z.string().nullish();
const b = () => z.boolean().nullish();
const arr = <T extends z.ZodType>(item: T) => z.array(item).nullish();

// ---- create (POST /v3/tasks) ------------------------------------------------

/** Table 4-103. */
export const taskPhysicalVolumeSchema = z.object({
  device_use: str().optional(),
  file_system: str().optional(),
  index: int().optional(),
  mount_point: str().optional(),
  name: str().optional(),
  size: long().optional(),
  inode_size: long().optional(),
  used_size: long().optional(),
  uuid: str().nullish(),
  // ---- ferry extensions (layout/sms-mapping.ts, docs/local-control-plane.md): what the table lacks to lay out a partition.
  /** ferry extension: GPT type GUID or MBR type byte in hex ('83', '5', '8e'). */
  partition_type: str(64).optional(),
  /** ferry extension: GPT partition name. */
  partition_name: str(72).optional(),
  /** ferry extension: GPT partition UUID (PARTUUID). */
  partition_uuid: str(64).optional(),
  /** ferry extension: GPT attributes as sfdisk names them ('RequiredPartition', 'LegacyBIOSBootable', 'GUID:60'). */
  flags: z.array(str(32)).max(16).optional(),
  /** ferry extension: MBR active flag. */
  bootable: z.boolean().optional(),
  /** ferry extension: MBR logical partition (inside the extended one). */
  logical: z.boolean().optional(),
  /** ferry extension: start on the source disk, bytes (kept by block-level whole-disk copies). */
  start: long().optional(),
  /** ferry extension: file system or swap label. */
  label: str().optional(),
  /** ferry extension (the field of tables 4-44/4-45): false leaves this partition out of the target. */
  need_migration: z.boolean().optional(),
  /** ferry extension (the field of tables 4-44/4-45): the partition's new size in bytes (0: unchanged). */
  adjust_size: long().optional(),
});

/** Table 4-102. */
export const targetDiskSchema = z.object({
  device_use: z.enum(['NORMAL', 'OS', 'BOOT']).optional(),
  disk_id: str().optional(),
  name: str(),
  physical_volumes: list(taskPhysicalVolumeSchema),
  size: long(),
  used_size: long(),
  /** ferry extension (an SDK field, issue 17): the disk's partition table, 'GPT' or 'MBR'. */
  partition_style: z.enum(['GPT', 'MBR']).optional(),
  /** ferry extension: GPT disk GUID or MBR disk identifier ('0x1234abcd'). */
  table_id: str(64).optional(),
});

/** Tables 4-105 and 4-104: the same fields as the source's tables 4-15 and 4-14, plus ferry extensions. */
export const taskLogicalVolumeSchema = logicalVolumeSchema.extend({
  /** ferry extension: file system UUID and label. */
  uuid: str(64).optional(),
  label: str().optional(),
  /** ferry extension (tables 4-45/4-46): false leaves this LV out; a new size in bytes. */
  need_migration: z.boolean().optional(),
  adjust_size: long().optional(),
});
export const taskVolumeGroupSchema = volumeGroupSchema.extend({
  logical_volumes: list(taskLogicalVolumeSchema, 255).optional(),
  /** ferry extension: VG UUID and extent size in bytes. */
  uuid: str(64).optional(),
  extent_size: long().optional(),
});

/**
 * Table 4-99. The table names the volume-group list `volume_group_s` (a PDF
 * line break), the example `volume_groups`: both are accepted. Btrfs entries
 * are the source's own inventory, passed through.
 */
export const targetServerByTaskSchema = z.object({
  btrfs_list: list(z.looseObject({})).optional(),
  disks: list(targetDiskSchema),
  name: str(),
  vm_id: str(),
  volume_groups: list(taskVolumeGroupSchema).optional(),
  volume_group_s: list(taskVolumeGroupSchema).optional(),
});

/** ferry extension: where the task's receiver listens and how the agent proves itself to it. */
export const taskReceiverSchema = z.object({
  /** Host or IP; defaults to the task's migration_ip. */
  host: str().optional(),
  port: z.int().min(1).max(65_535),
  /** sha256 fingerprint of the receiver's certificate (hex, colons optional). */
  fingerprint: str(),
  /** Shared secret the receiver accepts from this task's agent. Never logged. */
  join_token: str(1024),
});
export type TaskReceiver = z.infer<typeof taskReceiverSchema>;

/** Table 4-97. */
export const taskCreateSchema = z.object({
  name: str(),
  type: z.enum(TASK_TYPES),
  start_target_server: z.boolean().optional(),
  auto_start: z.boolean().optional(),
  os_type: str(),
  source_server: z.object({ id: str() }),
  target_server: targetServerByTaskSchema,
  migration_ip: str().optional(),
  region_name: str(),
  region_id: str(),
  project_name: str(),
  project_id: str(),
  priority: int(65_535).optional(),
  vm_template_id: str().optional(),
  use_public_ip: z.boolean().optional(),
  use_ipv6: z.boolean().optional(),
  syncing: z.boolean().optional(),
  exist_server: z.boolean().optional(),
  start_network_check: z.boolean().optional(),
  speed_limit: int(10_000).optional(),
  over_speed_threshold: double(100).optional(),
  is_need_consistency_check: z.boolean().optional(),
  /** ferry extension. */
  receiver: taskReceiverSchema.optional(),
});
export type TaskCreate = z.infer<typeof taskCreateSchema>;

/** Table 4-106. */
export const taskCreatedSchema = z.looseObject({ id: idLike() });
export type TaskCreated = z.infer<typeof taskCreatedSchema>;

// ---- list and show ---------------------------------------------------------

/** Query of GET /v3/tasks (table 4-109). */
export const taskListQuerySchema = z.object({
  state: z.enum(TASK_STATES).optional(),
  name: str().optional(),
  id: str().optional(),
  source_server_id: str().optional(),
  limit: int(200).optional(),
  offset: int(65_535).optional(),
  enterprise_project_id: str().optional(),
});
export type TaskListQuery = z.infer<typeof taskListQuerySchema>;

/** Tables 4-113 / 4-141. */
export const subTaskSchema = z.looseObject({
  id: n(),
  name: s(),
  progress: n(),
  start_date: n(),
  end_date: n(),
  process_trace: s(),
  user_op: s(),
});
export type SubTask = z.infer<typeof subTaskSchema>;

/** Tables 4-114 / 4-134. */
export const taskSourceServerSchema = z.looseObject({
  id: idLike().nullish(),
  ip: s(),
  name: s(),
  os_type: s(),
  os_version: s(),
  oem_system: b(),
  state: s(),
  migration_cycle: s(),
});

/** Table 4-137. */
export const targetPhysicalVolumeViewSchema = physicalVolumeViewSchema.extend({
  id: n(),
  relation_name: s(),
  free_size: n(),
});

/** Table 4-136. */
export const targetDiskViewSchema = z.looseObject({
  id: n(),
  device_use: s(),
  disk_id: s(),
  name: s(),
  physical_volumes: arr(targetPhysicalVolumeViewSchema),
  size: n(),
  used_size: n(),
  disk_index: s(),
  os_disk: b(),
  partition_style: s(),
  relation_name: s(),
});

/** Tables 4-115 / 4-135. */
export const taskTargetServerSchema = z.looseObject({
  id: idLike().nullish(),
  vm_id: s(),
  name: s(),
  ip: s(),
  os_type: s(),
  os_version: s(),
  system_dir: s(),
  disks: arr(targetDiskViewSchema),
  volume_groups: arr(
    z.looseObject({ components: s(), free_size: n(), logical_volumes: arr(logicalVolumeViewSchema), name: s(), size: n() }),
  ),
  btrfs_list: arr(z.unknown()),
  image_disk_id: s(),
  cutovered_snapshot_ids: s(),
});

/** Table 4-117. */
export const networkCheckInfoSchema = z.looseObject({
  domain_connectivity: b(),
  destination_connectivity: b(),
  network_delay: n(),
  network_jitter: n(),
  migration_speed: n(),
  loss_percentage: n(),
  cpu_usage: n(),
  mem_usage: n(),
  evaluation_result: s(),
});

/** Table 4-118. */
export const configBodySchema = z.looseObject({ config_key: s(), config_value: s(), config_status: s() });

const taskCommon = {
  id: idLike(),
  name: s(),
  type: s(),
  os_type: s(),
  state: s(),
  estimate_completion_time: n(),
  estimate_complete_time: n(),
  create_date: n(),
  priority: n(),
  speed_limit: n(),
  migrate_speed: n(),
  compress_rate: n(),
  start_target_server: b(),
  error_json: s(),
  total_time: n(),
  migration_ip: s(),
  sub_tasks: arr(subTaskSchema),
  source_server: taskSourceServerSchema.nullish(),
  enterprise_project_id: idLike().nullish(),
  target_server: taskTargetServerSchema.nullish(),
  log_collect_status: s(),
  clone_server: cloneServerSchema.nullish(),
  syncing: b(),
  network_check_info: networkCheckInfoSchema.nullish(),
  special_config: arr(configBodySchema),
  total_cpu_usage: n(),
  agent_cpu_usage: n(),
  total_mem_usage: n(),
  agent_mem_usage: n(),
  total_disk_io: n(),
  agent_disk_io: n(),
  is_need_consistency_check: b(),
  /** Creation-time over-speed threshold (table 4-97), echoed by servers that keep it. */
  over_speed_threshold: n(),
  /** ferry extension: whether the control plane holds receiver details for GET …/certkey. */
  has_receiver: b(),
};

/** Table 4-112: one entry of GET /v3/tasks. */
export const taskSummarySchema = z.looseObject(taskCommon);

/** Table 4-111. */
export const taskListResponseSchema = z.looseObject({
  count: z.int().min(0),
  tasks: z.array(taskSummarySchema),
});

/** Table 4-133: GET /v3/tasks/{task_id}. */
export const taskDetailsSchema = z.looseObject({
  ...taskCommon,
  region_id: s(),
  region_name: s(),
  project_name: s(),
  project_id: s(),
  vm_template_id: s(),
  connected: b(),
  start_date: n(),
  finish_date: n(),
  float_ip: s(),
  remain_seconds: n(),
  target_snapshot_id: s(),
  exist_server: b(),
  use_public_ip: b(),
});

export type TaskSummary = z.infer<typeof taskSummarySchema>;
export type TaskListResponse = z.infer<typeof taskListResponseSchema>;
export type TaskDetails = z.infer<typeof taskDetailsSchema>;

// ---- update (PUT /v3/tasks/{task_id}) ---------------------------------------

/** Table 4-147: every field optional. */
export const taskUpdateSchema = z.object({
  name: str().optional(),
  type: z.enum(TASK_TYPES).optional(),
  os_type: z.enum(OS_TYPES).optional(),
  id: str().optional(),
  priority: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
  region_id: str().optional(),
  start_target_server: z.boolean().optional(),
  enterprise_project_id: str().min(1).optional(),
  exist_server: z.boolean().optional(),
  migration_ip: str().optional(),
  region_name: str().optional(),
  speed_limit: int(10_000).optional(),
  project_name: str().optional(),
  project_id: str().optional(),
  vm_template_id: str().optional(),
  source_server: z.looseObject({}).optional(),
  target_server: z.looseObject({}).optional(),
  state: str().optional(),
  estimate_completion_time: long().optional(),
  connected: z.boolean().optional(),
  create_date: long().optional(),
  start_date: long().optional(),
  finish_date: long().optional(),
  migrate_speed: double().optional(),
  error_json: str(1024).optional(),
  total_time: long().optional(),
});
export type TaskUpdate = z.infer<typeof taskUpdateSchema>;

// ---- action (POST /v3/tasks/{task_id}/action) -------------------------------

/** Table 4-166, plus ferry's `sync`. */
export const TASK_OPERATIONS = ['start', 'stop', 'test', 'clone_test', 'restart', 'network_check', 'sync'] as const;
export type TaskOperation = (typeof TASK_OPERATIONS)[number];

export const taskActionSchema = z.object({
  operation: z.enum(TASK_OPERATIONS),
  template_id: str(2048).optional(),
  switch_hce: z.boolean().optional(),
  is_need_consistency_check: z.boolean().optional(),
});
export type TaskAction = z.infer<typeof taskActionSchema>;
