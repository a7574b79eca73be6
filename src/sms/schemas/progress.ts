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

const clamp = (v: number | undefined, max: number): number | undefined =>
  v === undefined || !Number.isFinite(v) ? undefined : Math.min(max, Math.max(0, v));

/**
 * Brings measured values into the ranges table 4-172 allows, so that a fast
 * link (over 10 000 Mbit/s on loopback) or a rounding error never makes a
 * progress report invalid: numbers are clamped, integers rounded, the trace
 * cut to 2048 characters and agent_time to 30.
 */
export function clampProgressReport(report: ProgressReport): ProgressReport {
  const out: ProgressReport = {
    ...report,
    progress: Math.round(clamp(report.progress, 100) ?? 0),
    replicatesize: Math.round(clamp(report.replicatesize, Number.MAX_SAFE_INTEGER) ?? 0),
    totalsize: Math.round(clamp(report.totalsize, Number.MAX_SAFE_INTEGER) ?? 0),
    process_trace: report.process_trace.slice(0, 2048),
  };
  const set = <K extends keyof ProgressReport>(key: K, value: ProgressReport[K] | undefined) => {
    if (value === undefined) delete out[key];
    else out[key] = value;
  };
  set('migrate_speed', clamp(report.migrate_speed, 10_000));
  set('compress_rate', clamp(report.compress_rate, 10_000));
  const remain = clamp(report.remain_time, 2_147_483_647);
  set('remain_time', remain === undefined ? undefined : Math.round(remain));
  set('total_cpu_usage', clamp(report.total_cpu_usage, 100));
  set('agent_cpu_usage', clamp(report.agent_cpu_usage, 100));
  set('total_mem_usage', clamp(report.total_mem_usage, 1_048_576));
  set('agent_mem_usage', clamp(report.agent_mem_usage, 1_048_576));
  set('total_disk_io', clamp(report.total_disk_io, 10_000));
  set('agent_disk_io', clamp(report.agent_disk_io, 10_000));
  if (report.agent_time !== undefined) out.agent_time = report.agent_time.slice(0, 30);
  return out;
}
