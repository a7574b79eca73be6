// The demo's live progress line, built only from what the control plane
// shows an operator: the task view (state, subtask progress, migrate_speed,
// remain_seconds) and the source summary (replicatesize / totalsize).

import type { TaskDetails } from '../sms/schemas/task.js';
import type { SourceSummary } from '../sms/schemas/source-read.js';
import { formatBytes, formatDuration } from '../platform/human-units.js';

export { formatBytes, formatDuration };

export interface ProgressSnapshot {
  state: string;
  percent: number;
  /** Mbit/s on the wire, as the agent reported it. */
  speedMbps: number | null;
  etaSeconds: number | null;
  doneBytes: number | null;
  totalBytes: number | null;
  subtask: string | null;
}

/**
 * The source summary adds up the bytes of all the task's subtasks (one per
 * pass kind); `base` is what earlier passes contributed, subtracted so the
 * line shows the current pass alone.
 */
export function snapshot(task: TaskDetails, source: SourceSummary | undefined, base: ByteCounts = { done: 0, total: 0 }): ProgressSnapshot {
  const subs = task.sub_tasks ?? [];
  const current = subs.filter((s) => s.start_date != null && s.end_date == null).at(-1) ?? subs.at(-1);
  const raw = byteCounts(source);
  const own = raw && raw.total > base.total ? { done: Math.max(0, raw.done - base.done), total: raw.total - base.total } : null;
  const done = own?.done ?? null;
  const total = own && own.total > 0 ? own.total : null;
  let percent = typeof current?.progress === 'number' ? current.progress : 0;
  if (done !== null && total !== null) percent = Math.max(percent, Math.min(100, (done / total) * 100));
  const speed = typeof task.migrate_speed === 'number' && task.migrate_speed > 0 ? task.migrate_speed : null;
  return {
    state: task.state ?? '?',
    percent,
    speedMbps: speed,
    etaSeconds: typeof task.remain_seconds === 'number' ? task.remain_seconds : null,
    doneBytes: done,
    totalBytes: total,
    subtask: current?.name ?? null,
  };
}

export interface ByteCounts {
  done: number;
  total: number;
}

export function byteCounts(source: SourceSummary | undefined): ByteCounts | null {
  if (typeof source?.replicatesize !== 'number' || typeof source.totalsize !== 'number') return null;
  return { done: source.replicatesize, total: source.totalsize };
}

export function formatProgress(p: ProgressSnapshot): string {
  const parts = [`${p.state.padEnd(15)}`, `${p.percent.toFixed(1).padStart(5)}%`];
  if (p.doneBytes !== null && p.totalBytes !== null) parts.push(`${formatBytes(p.doneBytes)} / ${formatBytes(p.totalBytes)}`);
  parts.push(p.speedMbps !== null ? `${p.speedMbps.toFixed(1)} Mbit/s` : '- Mbit/s');
  parts.push(`ETA ${p.etaSeconds !== null ? formatDuration(p.etaSeconds) : '-'}`);
  if (p.subtask) parts.push(p.subtask);
  return parts.join('  ');
}

