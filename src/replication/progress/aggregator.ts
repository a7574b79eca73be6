// Folds the VolumeProgress snapshots of a task's volumes into one table
// 4-172 body. Rules:
// - subtask_name from the OS and the first volume's level and pass; a
//   volume of another pass (full → delta) starts a new subtask, and so does
//   startSubtask() (each SYNC round); progress may then start again from 0.
//   Block and file volumes mixed in one pass stay one subtask.
// - progress (0–100, whole %) never goes backwards within a subtask, and is
//   100 only when every volume is done.
// - replicatesize / totalsize are bytes of the volumes in this subtask;
//   all-zero and unchanged bytes count as done (the engines report them in
//   doneBytes). Volumes announced in `plan` count before they start.
// - migrate_speed is the wire rate over the last 10 s in Mbit/s, as a
//   least-squares slope (a progress event a moment old does not read as a
//   dip).
// - remain_time is the bytes the sender still has to deal with (from
//   sentBytes when the engine reports it, else doneBytes) over their rate in
//   the last 30 s: again a slope, because bytes done move in steps (commit
//   acknowledgements), and counted from the first byte so that connecting
//   and the manifest exchange do not drag the rate down. Left out while
//   nothing moves.
// - compress_rate is payload bytes per wire byte (2.0 = halved).

import type { ProgressReport, SubtaskName } from '../../sms/schemas/progress.js';
import type { VolumeProgress } from '../types.js';
import { localIsoTime } from '../throttle/clock.js';
import { RateMeter } from './rate-meter.js';
import { subtaskName, type SourceOs } from './subtask-name.js';
import type { SystemStats } from './system-stats.js';

export const SPEED_WINDOW_MS = 10_000;
export const ETA_WINDOW_MS = 30_000;
const TRACE_MAX = 2048;
const MiB = 1024 * 1024;

export interface AggregatorOptions {
  os: SourceOs;
  /** Epoch ms now (the throttle's Clock.now fits). */
  now: () => number;
  /**
   * Volumes the subtask will copy, before their passes start: with a size,
   * they count in totalsize at once; with or without one, the subtask is not
   * 100 % until each of them is done.
   */
  plan?: PlannedVolume[];
  /** Overrides the name derived from the volumes (e.g. a caller-chosen subtask). */
  subtask?: SubtaskName;
}

export interface PlannedVolume {
  volume: string;
  totalBytes?: number;
}

interface VolumeState {
  p: VolumeProgress;
  done: number;
  /** Where the sender is (>= done): the ETA counts from here. */
  sent: number;
}

export class ProgressAggregator {
  private volumes = new Map<string, VolumeState>();
  private planned = new Map<string, number | undefined>();
  private name: SubtaskName | null;
  private pass: 'full' | 'delta' | null = null;
  private lastProgress = 0;
  private readonly wire = new RateMeter(SPEED_WINDOW_MS);
  private readonly doneRate = new RateMeter(ETA_WINDOW_MS);
  /** The ETA's rate starts with the first byte done, not with connecting and the manifest exchange. */
  private doneStarted = false;
  /** Called when the subtask name changes (the reporter sends at once). */
  onSubtaskChange?: (name: SubtaskName) => void;

  constructor(private readonly o: AggregatorOptions) {
    for (const v of o.plan ?? []) this.planned.set(v.volume, v.totalBytes);
    this.name = o.subtask ?? null;
  }

  get subtask(): SubtaskName | null {
    return this.name;
  }

  /** A ProgressListener: cheap and synchronous, safe to call from the copy loop. */
  readonly update = (p: VolumeProgress): void => {
    if (this.pass !== p.pass) {
      const name = this.o.subtask ?? subtaskName(this.o.os, p.kind, p.pass);
      if (this.name === null) this.name = name; // the first volume names the first subtask
      else if (this.pass !== null) this.startSubtask(name); // full → delta
      this.pass = p.pass;
    }
    const prev = this.volumes.get(p.volume);
    const done = Math.min(p.totalBytes, Math.max(prev?.done ?? 0, p.doneBytes));
    const sent = Math.min(p.totalBytes, Math.max(done, prev?.sent ?? 0, p.sentBytes ?? 0));
    this.volumes.set(p.volume, { p, done, sent });
    this.sample(this.o.now());
  };

  private sample(t: number): void {
    this.wire.add(t, this.sum((v) => v.p.wireBytes));
    const sent = this.sum((v) => v.sent);
    if (sent > 0) this.doneStarted = true;
    if (this.doneStarted) this.doneRate.add(t, sent);
  }

  /** Starts a new subtask explicitly (e.g. a SYNC after a full copy). */
  startSubtask(name: SubtaskName, plan?: PlannedVolume[]): void {
    const first = this.name === null;
    this.name = name;
    this.pass = null;
    this.lastProgress = 0;
    this.volumes.clear();
    if (plan) this.planned = new Map(plan.map((v) => [v.volume, v.totalBytes]));
    else if (!first) this.planned.clear();
    this.wire.reset();
    this.doneRate.reset();
    this.doneStarted = false;
    if (!first) this.onSubtaskChange?.(name);
  }

  private sum(f: (v: VolumeState) => number): number {
    let s = 0;
    for (const v of this.volumes.values()) s += f(v);
    return s;
  }

  /** The body to PUT now; null before any volume reported and without a subtask. */
  report(stats?: SystemStats | null): ProgressReport | null {
    if (!this.name) return null;
    const t = this.o.now();
    // Sample "now" so a stalled copy shows its rate falling.
    this.sample(t);

    let total = 0;
    let done = 0;
    let sent = 0;
    for (const [vol, size] of this.planned) if (!this.volumes.has(vol)) total += size ?? 0;
    for (const v of this.volumes.values()) {
      total += v.p.totalBytes;
      done += v.done;
      sent += v.sent;
    }
    const allDone = this.volumes.size > 0 && [...this.volumes.values()].every((v) => v.p.phase === 'done') && [...this.planned.keys()].every((k) => this.volumes.has(k));
    let progress = allDone ? 100 : total > 0 ? Math.min(99, Math.floor((done * 100) / total)) : 0;
    progress = Math.max(this.lastProgress, progress);
    this.lastProgress = progress;

    const payload = this.sum((v) => v.p.payloadBytes);
    const wireBytes = this.sum((v) => v.p.wireBytes);
    const wireRate = this.wire.slope();
    const doneRate = this.doneRate.slope();
    const body: ProgressReport = {
      subtask_name: this.name,
      progress,
      replicatesize: allDone ? total : done,
      totalsize: total,
      process_trace: this.trace(),
      agent_time: localIsoTime(t),
    };
    if (wireRate !== null) body.migrate_speed = clamp(round2((wireRate * 8) / 1e6), 10_000);
    if (wireBytes > 0) body.compress_rate = clamp(round2(payload / wireBytes), 10_000);
    if (allDone) body.remain_time = 0;
    else if (doneRate !== null && doneRate > 0 && this.doneRate.span() >= 2_000) {
      body.remain_time = Math.min(2_147_483_647, Math.round((total - sent) / doneRate));
    }
    if (stats) Object.assign(body, statsFields(stats));
    return body;
  }

  /** `0_1 sending 42% 430/1024 MiB; 0_2 done` — volumes in the order they appeared. */
  private trace(): string {
    const parts: string[] = [];
    for (const v of this.volumes.values()) {
      const pct = v.p.totalBytes > 0 ? Math.floor((v.done * 100) / v.p.totalBytes) : 100;
      parts.push(v.p.phase === 'done' ? `${v.p.volume} done` : `${v.p.volume} ${v.p.phase} ${pct}% ${Math.floor(v.done / MiB)}/${Math.ceil(v.p.totalBytes / MiB)} MiB`);
    }
    for (const vol of this.planned.keys()) if (!this.volumes.has(vol)) parts.push(`${vol} waiting`);
    const s = parts.join('; ');
    return s.length <= TRACE_MAX ? s : `${s.slice(0, TRACE_MAX - 3)}...`;
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function clamp(x: number, max: number): number {
  return Math.max(0, Math.min(max, x));
}

function statsFields(s: SystemStats): Partial<ProgressReport> {
  const out: Partial<ProgressReport> = {};
  if (s.totalCpuPct !== null) out.total_cpu_usage = clamp(round2(s.totalCpuPct), 100);
  if (s.agentCpuPct !== null) out.agent_cpu_usage = clamp(round2(s.agentCpuPct), 100);
  if (s.totalMemMB !== null) out.total_mem_usage = clamp(round2(s.totalMemMB), 1_048_576);
  if (s.agentMemMB !== null) out.agent_mem_usage = clamp(round2(s.agentMemMB), 1_048_576);
  if (s.totalDiskIoMBps !== null) out.total_disk_io = clamp(round2(s.totalDiskIoMBps), 10_000);
  if (s.agentDiskIoMBps !== null) out.agent_disk_io = clamp(round2(s.agentDiskIoMBps), 10_000);
  return out;
}
