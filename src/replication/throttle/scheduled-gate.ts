// The ByteGate a task's passes share: a TokenBucket whose rate follows a
// SpeedSchedule by local time. The rate is re-read on every acquire() and by
// a timer set for the next segment boundary, so a change of segment takes
// effect at the boundary even while every connection is waiting. A new
// schedule (from the control plane or a file) replaces the old one at once.

import type { ByteGate } from '../types.js';
import { localMsOfDay, type Clock, type TimerHandle } from './clock.js';
import { mbpsToBytesPerSec, SpeedSchedule, type ActiveLimit } from './speed-schedule.js';
import { TokenBucket } from './token-bucket.js';

/** Re-check at least this often, whatever the schedule says (clock jumps, DST). */
const MAX_RECHECK_MS = 60_000;

export class ScheduledGate implements ByteGate {
  readonly bucket: TokenBucket;
  private schedule: SpeedSchedule;
  private current: ActiveLimit;
  private timer: TimerHandle | null = null;
  private closed = false;
  private readonly listeners = new Set<(active: ActiveLimit, at: number) => void>();

  constructor(
    private readonly clock: Clock,
    schedule: SpeedSchedule = SpeedSchedule.flat(),
  ) {
    this.schedule = schedule;
    this.current = schedule.at(localMsOfDay(clock.now()));
    this.bucket = new TokenBucket(clock, mbpsToBytesPerSec(this.current.limitMbps));
    this.arm();
  }

  /** What applies now. */
  get active(): ActiveLimit {
    return this.current;
  }

  get currentSchedule(): SpeedSchedule {
    return this.schedule;
  }

  /** Called whenever the limit in force changes (new segment or new schedule). */
  onChange(fn: (active: ActiveLimit, at: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  setSchedule(schedule: SpeedSchedule): void {
    this.schedule = schedule;
    this.recheck(true);
  }

  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    this.recheck(false);
    return this.bucket.acquire(bytes, signal);
  }

  /** Re-reads the schedule at the current local time. */
  recheck(force: boolean, rearm = false): void {
    if (this.closed) return;
    const now = this.clock.now();
    const next = this.schedule.at(localMsOfDay(now));
    const changed = next.limitMbps !== this.current.limitMbps || next.overSpeedThresholdPct !== this.current.overSpeedThresholdPct || next.segment !== this.current.segment;
    this.current = next;
    if (changed || force) {
      this.bucket.setRate(mbpsToBytesPerSec(next.limitMbps));
      for (const fn of this.listeners) fn(next, now);
    }
    if (changed || force || rearm) this.arm();
  }

  private arm(): void {
    this.timer?.cancel();
    if (this.closed) return;
    // +1 ms so that the timer lands inside the next segment, not on its edge.
    this.timer = this.clock.setTimer(() => {
      this.timer = null;
      this.recheck(false, true);
    }, Math.min(this.current.msUntilChange + 1, MAX_RECHECK_MS));
  }

  close(reason: Error = new Error('throttle closed')): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = null;
    this.bucket.close(reason);
  }
}
