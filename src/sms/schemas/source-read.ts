// Reading and deleting sources: GET /v3/sources (section 4.1.3, tables 4-19
// to 4-31), GET /v3/sources/{source_id} (4.1.8, tables 4-63 to 4-77) and
// DELETE /v3/sources/{source_id} (4.1.7, a bare-string response).
//
// Responses are loose (unknown fields kept) and nullish where the examples
// send null. Only what identifies a record is required: `id` of each source,
// `count` and `source_servers` of a list.

import { z } from 'zod';
import { idLike, int, MIGRATION_CYCLES, SOURCE_STATES, str } from './common.js';

const n = () => z.number().nullish();
const s = () => z.string().nullish();
const b = () => z.boolean().nullish();
const arr = <T extends z.ZodType>(item: T) => z.array(item).nullish();

/** Query of GET /v3/sources (table 4-19). */
export const sourceListQuerySchema = z.object({
  state: z.enum(SOURCE_STATES).optional(),
  name: str().optional(),
  id: str().optional(),
  ip: str().optional(),
  migproject: str().optional(),
  limit: int(200).optional(),
  offset: int(65_535).optional(),
  migration_cycle: z.enum(MIGRATION_CYCLES).optional(),
  connected: z.boolean().optional(),
  enterprise_project_id: str().optional(),
  is_consistency_result_exist: z.boolean().optional(),
});
export type SourceListQuery = z.infer<typeof sourceListQuerySchema>;

/** Tables 4-24 / 4-68. */
export const targetServerByIdSchema = z.looseObject({ vm_id: s(), name: s() });

/** Tables 4-25 / 4-69. */
export const cloneServerSchema = z.looseObject({
  vm_id: s(),
  name: s(),
  clone_error: s(),
  clone_state: s(),
  error_msg: s(),
});

/** Tables 4-23 / 4-67: the task a source is in. */
export const taskBySourceSchema = z.looseObject({
  id: idLike(),
  name: s(),
  type: s(),
  state: s(),
  estimate_completion_time: n(),
  estimate_complete_time: n(),
  start_date: n(),
  speed_limit: n(),
  migrate_speed: n(),
  compress_rate: n(),
  start_target_server: b(),
  vm_template_id: s(),
  region_id: s(),
  project_name: s(),
  project_id: s(),
  target_server: targetServerByIdSchema.nullish(),
  log_collect_status: s(),
  exist_server: b(),
  use_public_ip: b(),
  clone_server: cloneServerSchema.nullish(),
  remain_seconds: n(),
  log_bucket: s(),
  log_expire: n(),
  log_upload_time: n(),
  log_share_url: s(),
});

/** Tables 4-26 / 4-77. */
export const environmentCheckSchema = z.looseObject({
  id: n(),
  params: arr(z.string().nullable()),
  name: s(),
  result: s(),
  error_code: s(),
  error_or_warn: s(),
  error_params: s(),
});

/** Tables 4-29 / 4-66 / 4-71 (a partition as the server reports it). */
export const physicalVolumeViewSchema = z.looseObject({
  device_use: s(),
  file_system: s(),
  index: n(),
  mount_point: s(),
  name: s(),
  size: n(),
  inode_size: n(),
  inode_nums: n(),
  used_size: n(),
  uuid: s(),
  size_per_cluster: n(),
});

/** Tables 4-31 / 4-73. */
export const logicalVolumeViewSchema = z.looseObject({
  block_count: n(),
  block_size: n(),
  file_system: s(),
  inode_size: n(),
  inode_nums: n(),
  device_use: s(),
  mount_point: s(),
  name: s(),
  size: n(),
  used_size: n(),
  free_size: n(),
});

/** Tables 4-30 / 4-72. */
export const volumeGroupViewSchema = z.looseObject({
  components: s(),
  free_size: n(),
  logical_volumes: arr(logicalVolumeViewSchema),
  name: s(),
  size: n(),
});

/** Tables 4-28 / 4-65. */
export const diskInTargetServerSchema = z.looseObject({
  name: s(),
  size: n(),
  device_use: s(),
  used_size: n(),
  physical_volumes: arr(physicalVolumeViewSchema),
});

/** Tables 4-27 / 4-64. */
export const initTargetServerSchema = z.looseObject({
  disks: arr(diskInTargetServerSchema),
  volume_groups: arr(volumeGroupViewSchema),
});

/** Table 4-70 (a disk as the server reports it). */
export const serverDiskViewSchema = z.looseObject({
  name: s(),
  partition_style: s(),
  device_use: s(),
  size: n(),
  used_size: n(),
  physical_volumes: arr(physicalVolumeViewSchema),
  os_disk: b(),
  relation_name: s(),
  inode_size: n(),
});

/** Table 4-76. */
export const networkViewSchema = z.looseObject({
  name: s(),
  ip: s(),
  netmask: s(),
  gateway: s(),
  mtu: n(),
  mac: s(),
  id: s(),
});

/** Fields common to a list entry (table 4-22) and the details (table 4-63). */
const sourceCommon = {
  id: idLike(),
  ip: s(),
  name: s(),
  enterprise_project_id: idLike().nullish(),
  add_date: n(),
  os_type: s(),
  os_version: s(),
  oem_system: b(),
  state: s(),
  connected: b(),
  cpu_quantity: n(),
  memory: n(),
  current_task: taskBySourceSchema.nullish(),
  checks: arr(environmentCheckSchema),
  init_target_server: initTargetServerSchema.nullish(),
  replicatesize: n(),
  stage_action_time: n(),
  totalsize: n(),
  last_visit_time: n(),
  migration_cycle: s(),
  state_action_time: n(),
  is_consistency_result_exist: b(),
  has_tc: b(),
};

/** Table 4-22: one entry of GET /v3/sources. */
export const sourceSummarySchema = z.looseObject(sourceCommon);

/** Table 4-21. */
export const sourceListResponseSchema = z.looseObject({
  count: z.int().min(0),
  source_servers: z.array(sourceSummarySchema),
});

/** Table 4-63: GET /v3/sources/{source_id}. */
export const sourceDetailsSchema = z.looseObject({
  ...sourceCommon,
  hostname: s(),
  firmware: s(),
  disks: arr(serverDiskViewSchema),
  volume_groups: arr(volumeGroupViewSchema),
  btrfs_list: arr(z.looseObject({})),
  networks: arr(networkViewSchema),
  agent_version: s(),
});

/** Response of POST /v3/sources (table 4-16): the id SMS gives the source. */
export const sourceRegisteredSchema = z.looseObject({ id: idLike() });

/** Query of DELETE /v3/sources/{source_id}: ferry's `force` (see docs/control-plane-client.md). */
export const sourceDeleteQuerySchema = z.object({ force: z.boolean().optional() });

export type SourceSummary = z.infer<typeof sourceSummarySchema>;
export type SourceListResponse = z.infer<typeof sourceListResponseSchema>;
export type SourceDetails = z.infer<typeof sourceDetailsSchema>;
export type SourceRegistered = z.infer<typeof sourceRegisteredSchema>;
export type TaskBySource = z.infer<typeof taskBySourceSchema>;
