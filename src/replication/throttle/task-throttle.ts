// One task's throttle, wired: a ScheduledGate fed by a RuleRefresher (when
// the task has a control plane) and watched by an OverSpeedDetector (when
// the caller can count wire bytes). The agent builds one per task run and
// hands `gate` to every pass of the task.

import type { Logger } from '../../platform/log.js';
import type { Clock, TimerHandle } from './clock.js';
import { OverSpeedDetector, overSpeedError } from './over-speed.js';
import { RuleRefresher } from './rule-refresher.js';
import { ScheduledGate } from './scheduled-gate.js';
import { SpeedSchedule, type TaskSpeedDefaults } from './speed-schedule.js';
import type { FerryError } from '../../errors/ferry-error.js';

export interface TaskThrottleOptions {
  clock: Clock;
  log?: Logger;
  /** The schedule in force before the first fetch (or for good, without fetchRules). */
  initial?: SpeedSchedule;
  /** GET /v3/tasks/{id}/speed-limit; refreshed at start and every minute. */
  fetchRules?: () => Promise<unknown>;
  /** Task speed_limit / over_speed_threshold, read at each refresh. */
  defaults?: () => TaskSpeedDefaults;
  /** Cumulative bytes on the wire across the task's connections (enables over-speed protection). */
  wireBytes?: () => number;
  /** Called once when over-speed protection trips; the caller stops the task with this error. */
  onOverSpeed?: (err: FerryError) => void;
}

export class TaskThrottle {
  readonly gate: ScheduledGate;
  readonly refresher: RuleRefresher | null;
  readonly detector: OverSpeedDetector | null;
  private readonly clock: Clock;

  constructor(o: TaskThrottleOptions) {
    this.clock = o.clock;
    this.gate = new ScheduledGate(o.clock, o.initial ?? SpeedSchedule.flat(o.defaults?.() ?? {}));
    this.gate.onChange((a) => o.log?.info({ limit: a.describe }, `speed limit now ${a.describe}`));
    this.refresher = o.fetchRules
      ? new RuleRefresher({
          clock: o.clock,
          fetchRules: o.fetchRules,
          defaults: o.defaults,
          apply: (s) => this.gate.setSchedule(s),
          onError: (e) => o.log?.warn({ code: e.code }, e.message),
        })
      : null;
    this.detector =
      o.wireBytes && o.onOverSpeed
        ? new OverSpeedDetector({
            clock: o.clock,
            wireBytes: o.wireBytes,
            limit: () => this.gate.active,
            onOverSpeed: (info) => {
              const err = overSpeedError(info);
              o.log?.error({ code: err.code }, err.message);
              this.gate.close(err);
              o.onOverSpeed!(err);
            },
          })
        : null;
  }

  /**
   * Starts the minute refresh and the guard. Waits for the first fetch of
   * the rules at most `firstFetchWaitMs` (default 5 s): a slow control plane
   * delays the copy that long at most, under the task's own limit, and the
   * rules apply whenever they arrive.
   */
  async start(firstFetchWaitMs = 5_000): Promise<void> {
    this.detector?.start();
    if (!this.refresher) return;
    let timer: TimerHandle | undefined;
    await Promise.race([this.refresher.start(), new Promise<void>((r) => (timer = this.clock.setTimer(r, firstFetchWaitMs)))]);
    timer?.cancel();
  }

  stop(): void {
    this.refresher?.stop();
    this.detector?.stop();
    this.gate.close(new Error('task throttle stopped'));
  }
}
