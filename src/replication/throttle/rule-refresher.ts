// Keeps a task's speed-limit rules current: fetches them at start, every
// minute, and on demand (SYNC), through a function the caller passes in (the
// agent wires it to GET /v3/tasks/{id}/speed-limit). A fetch that fails or
// returns invalid rules leaves the previous valid schedule in force and is
// reported through onError; it never throws into the copy.

import { errorMessage, FerryError } from '../../errors/ferry-error.js';
import type { Clock, TimerHandle } from './clock.js';
import { SpeedSchedule, type TaskSpeedDefaults } from './speed-schedule.js';

export const REFRESH_INTERVAL_MS = 60_000;

export interface RuleRefresherOptions {
  clock: Clock;
  /** Returns the body of GET /v3/tasks/{id}/speed-limit. */
  fetchRules: () => Promise<unknown>;
  /** The task's own speed_limit / over_speed_threshold (gap fallback). */
  defaults?: () => TaskSpeedDefaults;
  /** Receives each new valid schedule (e.g. ScheduledGate.setSchedule). */
  apply: (schedule: SpeedSchedule) => void;
  /** Receives fetch failures and rejected rule sets; the old schedule stays. */
  onError?: (err: FerryError) => void;
  intervalMs?: number;
}

export class RuleRefresher {
  private timer: TimerHandle | null = null;
  private running = false;
  private inFlight: Promise<void> | null = null;
  private lastGood: string | null = null;

  constructor(private readonly o: RuleRefresherOptions) {}

  /** Fetches now, then every interval. Resolves after the first fetch (success or not). */
  start(): Promise<void> {
    this.running = true;
    return this.refreshNow();
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = null;
  }

  /** Fetches at once (task start, SYNC); concurrent calls share one fetch. */
  refreshNow(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    this.timer?.cancel();
    this.timer = null;
    this.inFlight = this.fetchOnce().finally(() => {
      this.inFlight = null;
      if (this.running) this.timer = this.o.clock.setTimer(() => void this.refreshNow(), this.o.intervalMs ?? REFRESH_INTERVAL_MS);
    });
    return this.inFlight;
  }

  private async fetchOnce(): Promise<void> {
    let body: unknown;
    try {
      body = await this.o.fetchRules();
    } catch (err) {
      this.o.onError?.(
        err instanceof FerryError ? err : new FerryError('SMS.0301', `could not fetch speed-limit rules (keeping the previous ones): ${errorMessage(err)}`, { cause: err }),
      );
      return;
    }
    let schedule: SpeedSchedule;
    try {
      schedule = SpeedSchedule.parse(body, this.o.defaults?.() ?? {});
    } catch (err) {
      const e = err instanceof FerryError ? err : new FerryError('SMS.9001', errorMessage(err));
      this.o.onError?.(new FerryError(e.code, `rejected new speed-limit rules, the previous ones stay in force: ${e.message}`, { cause: e }));
      return;
    }
    const key = JSON.stringify([schedule.segments, schedule.defaults]);
    if (key === this.lastGood) return;
    this.lastGood = key;
    this.o.apply(schedule);
  }
}
