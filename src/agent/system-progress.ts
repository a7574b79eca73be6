// The table 4-172 progress of one whole-server pass (task-runner.ts feeds it
// the flow's step and volume events; the ProgressReporter sends what
// report() builds). Up to three subtasks, one after the other:
// - FORMAT_DISK_LINUX_FILE / _BLOCK while the source is discovered and the
//   receiver lays out the target disks: 0, 50 when the source is known, 100
//   when the layout is made or recognised. Only on a pass that may lay out
//   (the first, until the layout was once made); a SYNC never lays out.
// - MIGRATE_LINUX_FILE / _BLOCK (SYNC_LINUX_* on later passes) over every
//   volume copied, in bytes: the aggregator's figures for the volumes that
//   have started, and until every volume has started, the larger of those
//   and an estimate of the whole (the task's own sizes: used space at file
//   level, partition sizes at block level), so that the first volume ending
//   does not read as the pass nearly done. 100 only when every volume is.
// - CONFIGURE_LINUX_FILE / _BLOCK when the flow configures the copied system
//   after the copy (the agent's `system.configure`, after every pass): 0 at
//   the configure step's start, 100 when it is done with what it changed in
//   process_trace; a failure stays below 100 and says that the copied data
//   is intact (the task fails with the receiver's code).
// Progress never goes backwards within a subtask. A subtask is left (the
// next one reported) only once its 100 has gone out, and CONFIGURE's 0 goes
// out before its 100.

import type { ProgressReport, SubtaskName } from '../sms/schemas/progress.js';
import { localIsoTime } from '../replication/throttle/clock.js';
import { ProgressAggregator, type SystemStats } from '../replication/progress/index.js';
import type { SystemProgress, SystemStepEvent } from './ports.js';

export interface SystemPassProgressOptions {
  mode: 'file' | 'block';
  pass: 'full' | 'delta';
  /** Whether this pass reports FORMAT_DISK_* first (false on a SYNC, and once the layout was made). */
  format: boolean;
  /** Bytes the copy is expected to move, from the task's target_server (0 when unknown). */
  estimateBytes: number;
  now: () => number;
}

const TRACE_MAX = 2048;
const CONFIGURING = 'configuring the copied system for its new hardware (fstab, boot loader, initramfs drivers, network)';

export class SystemPassProgress {
  private formatProgress = 0;
  private formatTrace = 'discovering the source';
  /** FORMAT's 100 reached the control plane: the copy subtask may be reported. */
  private formatReported: boolean;
  private copyStarted = false;
  private copyReported = false;
  private finished = false;
  private aggregator?: ProgressAggregator;
  private readonly seen = new Set<number>();
  /** Volumes whose pass is done. (The aggregator's own 100 means "every volume it has seen", which is not every volume.) */
  private readonly done = new Set<number>();
  private count = 0;
  private lastCopyProgress = 0;
  private configureStarted = false;
  private configureProgress = 0;
  private configureTrace = '';
  private configureFailed = false;
  /** Some CONFIGURE report went out (its 0 first). */
  private configureSent = false;
  /** CONFIGURE's last word (its 100, or its failure) went out. */
  private configureSettled = false;
  private configure100 = false;
  /** Called when a report should go out at once (a subtask reached its end or changed). */
  onChange?: () => void;

  constructor(private readonly o: SystemPassProgressOptions) {
    this.formatReported = !o.format;
  }

  get formatName(): SubtaskName {
    return this.o.mode === 'file' ? 'FORMAT_DISK_LINUX_FILE' : 'FORMAT_DISK_LINUX_BLOCK';
  }

  get copyName(): SubtaskName {
    const verb = this.o.pass === 'full' ? 'MIGRATE' : 'SYNC';
    return this.o.mode === 'file' ? `${verb}_LINUX_FILE` : `${verb}_LINUX_BLOCK`;
  }

  get configureName(): SubtaskName {
    return this.o.mode === 'file' ? 'CONFIGURE_LINUX_FILE' : 'CONFIGURE_LINUX_BLOCK';
  }

  /** The configure step failed (the task fails with its code; its report says the data is intact). */
  get failedConfigure(): boolean {
    return this.configureFailed;
  }

  /** A step event of the flow. */
  readonly step = (e: SystemStepEvent): void => {
    if (e.step === 'discover' && e.state === 'done') {
      this.formatProgress = Math.max(this.formatProgress, 50);
      this.formatTrace = `source: ${e.detail ?? 'discovered'}; laying out the target disks`;
    } else if (e.step === 'layout' && e.state === 'done') {
      this.formatProgress = 100;
      this.formatTrace = `target disks ${e.detail ?? 'laid out'}`;
      this.onChange?.();
    } else if (e.state === 'failed' && (e.step === 'discover' || e.step === 'layout')) {
      this.formatTrace = `${e.step} failed: ${e.detail ?? ''}`;
    } else if (e.step === 'copy' && e.state === 'start') {
      this.copyStarted = true;
      if (e.volume) this.count = Math.max(this.count, e.volume.count);
    } else if (e.step === 'configure') {
      if (e.state === 'start') {
        // The flow configures only once every volume arrived: the copy is complete.
        this.finished = true;
        this.configureStarted = true;
        this.configureTrace = CONFIGURING;
      } else if (e.state === 'done') {
        this.configureProgress = 100;
        this.configureTrace = e.detail ?? 'configured';
      } else {
        this.configureFailed = true;
        this.configureTrace = `configure failed: ${e.detail ?? ''}; the copied data is intact (configure runs again after the next pass)`;
      }
      this.onChange?.();
    }
  };

  /** A volume's progress (cheap and synchronous, called from the copy loop). */
  readonly update = (p: SystemProgress): void => {
    this.copyStarted = true;
    this.count = Math.max(this.count, p.volumeCount);
    this.seen.add(p.volumeIndex);
    if (p.phase === 'done') this.done.add(p.volumeIndex);
    else this.done.delete(p.volumeIndex);
    this.aggregator ??= new ProgressAggregator({ os: 'LINUX', now: this.o.now, subtask: this.copyName });
    // One subtask for the whole pass: a volume that starts over in full (a new file system, a block
    // volume without a resume point) in a SYNC must not read as a new subtask to the aggregator.
    this.aggregator.update({ ...p, volume: p.volumeId, pass: this.o.pass });
  };

  /** Every volume was copied: the copy subtask is complete (also when there was nothing to copy). */
  finish(): void {
    this.finished = true;
  }

  /** The reporter tells what went out, so FORMAT is left only after its 100 did. */
  sent(body: ProgressReport): void {
    if (body.subtask_name === this.formatName && body.progress === 100) this.formatReported = true;
    if (body.subtask_name === this.copyName && body.progress === 100 && !this.copyReported) {
      this.copyReported = true;
      // The configure step may already wait behind the copy's 100: say so now, not at the next tick.
      if (this.configureStarted) this.onChange?.();
    }
    if (body.subtask_name === this.configureName) {
      const first = !this.configureSent;
      this.configureSent = true;
      if (body.progress === 100) this.configure100 = true;
      if (body.progress === 100 || (this.configureFailed && body.process_trace === cut(this.configureTrace))) this.configureSettled = true;
      else if (first && (this.configureProgress === 100 || this.configureFailed)) this.onChange?.();
    }
  }

  /** Whether the last subtask's 100 has gone out: CONFIGURE's when the flow configured, else the copy's (after finish(), more reports may be due: FORMAT's or the copy's 100 went first). */
  get complete(): boolean {
    return this.configureStarted ? this.configure100 : this.copyReported;
  }

  /** Whether everything this pass has to say went out: complete, or a failed configure's report. */
  get settled(): boolean {
    return this.configureStarted ? this.configureSettled : this.copyReported;
  }

  /** The body to PUT now (null: nothing to say yet). */
  report(stats?: SystemStats | null): ProgressReport | null {
    const t = this.o.now();
    if (!this.formatReported) {
      return { subtask_name: this.formatName, progress: this.formatProgress, replicatesize: 0, totalsize: 0, process_trace: cut(this.formatTrace), agent_time: localIsoTime(t) };
    }
    if (this.configureStarted && this.copyReported) {
      // Its 0 goes out first, also when the step was over before any report did.
      const zero = !this.configureSent && this.configureProgress === 100;
      return { subtask_name: this.configureName, progress: zero ? 0 : this.configureProgress, replicatesize: 0, totalsize: 0, process_trace: cut(zero ? CONFIGURING : this.configureTrace), agent_time: localIsoTime(t) };
    }
    if (!this.copyStarted && !this.finished) return null;
    const body = this.aggregator?.report(stats) ?? null;
    if (!body) {
      const total = this.o.estimateBytes;
      const progress = this.finished ? 100 : this.lastCopyProgress;
      this.lastCopyProgress = progress;
      return { subtask_name: this.copyName, progress, replicatesize: this.finished ? total : 0, totalsize: total, process_trace: this.finished ? 'nothing left to copy' : `${this.count} volumes to copy`, agent_time: localIsoTime(t) };
    }
    const allStarted = this.seen.size >= this.count;
    const allDone = this.finished || (allStarted && this.done.size >= this.count);
    const total = allStarted ? body.totalsize : Math.max(body.totalsize, this.o.estimateBytes);
    let progress = allDone ? 100 : total > 0 ? Math.min(99, Math.floor((body.replicatesize * 100) / total)) : 0;
    progress = Math.max(this.lastCopyProgress, progress);
    this.lastCopyProgress = progress;
    const out: ProgressReport = { ...body, progress, totalsize: total, replicatesize: allDone ? total : Math.min(body.replicatesize, total) };
    if (!allDone) delete out.remain_time;
    if (!allStarted) {
      out.process_trace = cut(`${body.process_trace}; ${this.count - this.seen.size} more volume(s) waiting`);
    }
    return out;
  }

}

function cut(s: string): string {
  return s.length <= TRACE_MAX ? s : `${s.slice(0, TRACE_MAX - 3)}...`;
}

/**
 * Bytes a whole-server copy of this target_server is expected to move: at
 * file level the used space of every file system that is copied (not swap,
 * not an LVM physical volume, not an unformatted partition; logical volumes
 * included), at block level the size of every partition (a physical volume
 * is copied byte for byte, its logical volumes with it).
 */
export function estimateCopyBytes(targetServer: Record<string, unknown>, mode: 'file' | 'block'): number {
  type Rec = Record<string, unknown>;
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);
  const partitions = ((targetServer.disks as Rec[] | undefined) ?? []).flatMap((d) => (d.physical_volumes as Rec[] | undefined) ?? []);
  if (mode === 'block') return partitions.reduce((sum, p) => sum + n(p.size), 0);
  const lvs = (((targetServer.volume_groups ?? targetServer.volume_group_s) as Rec[] | undefined) ?? []).flatMap((g) => (g.logical_volumes as Rec[] | undefined) ?? []);
  const copied = (fs: unknown) => typeof fs === 'string' && fs !== '' && !/^(swap|LVM2_member)$/i.test(fs);
  return [...partitions, ...lvs].filter((v) => copied(v.file_system)).reduce((sum, v) => sum + n(v.used_size), 0);
}
