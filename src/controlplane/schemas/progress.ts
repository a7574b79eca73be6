// PUT /v3/tasks/{task_id}/progress (section 4.2.8, table 4-172): the agent
// reports a subtask's progress and rate. The response is a bare string.

import { z } from 'zod';
import { double, int, long, str } from './common.js';

/** Subtask names of table 4-172. */
export const SUBTASK_NAMES = [
  'CREATE_CLOUD_SERVER',
  'SSL_CONFIG',
  'ATTACH_AGENT_IMAGE',
  'DETTACH_AGENT_IMAGE',
  'FORMAT_DISK_LINUX',
  'FORMAT_DISK_LINUX_FILE',
  'FORMAT_DISK_LINUX_BLOCK',
  'FORMAT_DISK_WINDOWS',
  'MIGRATE_LINUX_FILE',
  'MIGRATE_LINUX_BLOCK',
  'MIGRATE_WINDOWS_BLOCK',
  'CLONE_VM',
  'SYNC_LINUX_FILE',
  'SYNC_LINUX_BLOCK',
  'SYNC_WINDOWS_BLOCK',
  'CONFIGURE_LINUX',
  'CONFIGURE_LINUX_BLOCK',
  'CONFIGURE_LINUX_FILE',
  'CONFIGURE_WINDOWS',
] as const;
export type SubtaskName = (typeof SUBTASK_NAMES)[number];

/** Table 4-172. */
export const progressReportSchema = z.object({
  subtask_name: z.enum(SUBTASK_NAMES),
  progress: int(100),
  replicatesize: long(),
  totalsize: long(),
  process_trace: str(2048),
  /** Mbit/s. */
  migrate_speed: double().optional(),
  compress_rate: double().optional(),
  remain_time: int().optional(),
  total_cpu_usage: double(100).optional(),
  agent_cpu_usage: double(100).optional(),
  /** MB. */
  total_mem_usage: double(1_048_576).optional(),
  agent_mem_usage: double(1_048_576).optional(),
  /** MB/s. */
  total_disk_io: double().optional(),
  agent_disk_io: double().optional(),
  /** The source's local time, for time-segment speed limits. */
  agent_time: str(30).optional(),
});

export type ProgressReport = z.infer<typeof progressReportSchema>;
