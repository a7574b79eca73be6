// Sends progress bodies (PUT /v3/tasks/{id}/progress through the `send`
// function the caller passes) every few seconds and at once on `kick()`
// (a subtask change). One request at a time: while one is in flight, further
// reports collapse into a single pending one, and the body is built when it
// is sent, so only the latest figures ever go out. A failed send is retried
// with backoff, again with the latest body. Nothing here blocks or throws
// into the copy: the copy only calls the aggregator's synchronous update().

import { errorMessage } from '../../errors/ferry-error.js';
import type { ProgressReport } from '../../sms/schemas/progress.js';
import type { Logger } from '../../platform/log.js';
import type { Clock, TimerHandle } from '../throttle/clock.js';
import type { SystemSampler } from './system-stats.js';
import { backoffDelay, pause, type DelaySchedule } from '../../platform/backoff.js';

export const REPORT_INTERVAL_MS = 5_000;
/**
 * Failed reports are retried on the shared backoff policy: 1, 2, 4, then
 * every 5 s, and never later than the next regular report. No jitter: one
 * reporter per task, and each retry sends the latest figures anyway.
 */
const RETRY: DelaySchedule = { baseMs: 1_000, maxMs: 5_000, jitter: 'none' };

export interface ReporterOptions {
  clock: Clock;
  /** Builds the body to send now (null = nothing to report yet). */
  build: () => ProgressReport | null;
  send: (body: ProgressReport) => Promise<unknown>;
  intervalMs?: number;
  /** Sampled on the reporter's timer; build() reads its latest figures. */
  sampler?: SystemSampler;
  log?: Logger;
}

export class ProgressReporter {
  private timer: TimerHandle | null = null;
  private retryTimer: TimerHandle | null = null;
  private inFlight: Promise<unknown> | null = null;
  private pending = false;
  private failures = 0;
  private stopped = false;
  /** Reports sent successfully (for tests and diagnostics). */
  sent = 0;
  lastError: string | null = null;

  constructor(private readonly o: ReporterOptions) {}

  start(): void {
    this.stopped = false;
    void this.o.sampler?.sample().catch(() => undefined);
    this.schedule();
    this.kick();
  }

  private schedule(): void {
    this.timer?.cancel();
    this.timer = this.o.clock.setTimer(() => {
      void this.o.sampler?.sample().catch(() => undefined);
      this.kick();
      if (!this.stopped) this.schedule();
    }, this.o.intervalMs ?? REPORT_INTERVAL_MS);
  }

  /** Report as soon as possible (a subtask changed, or the timer is due). */
  kick(): void {
    if (this.inFlight) {
      this.pending = true;
      return;
    }
    if (this.retryTimer) return; // a retry is already scheduled; it sends the latest body
    this.inFlight = this.sendOnce().finally(() => {
      this.inFlight = null;
      if (this.pending && !this.retryTimer) {
        this.pending = false;
        this.kick();
      }
    });
  }

  /** One attempt; true when the report went through (or there was nothing to report). */
  private async sendOnce(): Promise<boolean> {
    const body = this.o.build();
    if (!body) return true;
    try {
      await this.o.send(body);
      this.sent++;
      if (this.failures > 0) this.o.log?.info({ after: this.failures }, 'progress reports go through again');
      this.failures = 0;
      this.lastError = null;
      return true;
    } catch (err) {
      this.failures++;
      this.lastError = errorMessage(err);
      if (this.failures === 1 || this.failures % 20 === 0) {
        this.o.log?.warn({ failures: this.failures }, `progress report failed (will retry with the latest figures): ${this.lastError}`);
      }
      if (!this.stopped) {
        const ms = backoffDelay(RETRY, this.failures - 1);
        this.retryTimer = this.o.clock.setTimer(() => {
          this.retryTimer = null;
          this.kick();
        }, Math.min(ms, this.o.intervalMs ?? REPORT_INTERVAL_MS));
      }
      return false;
    }
  }

  /**
   * Stops the timers and sends one last report (e.g. progress 100), retrying
   * it until `timeoutMs` has passed (real time, not the injected clock).
   * Never throws.
   */
  async stop(options: { final?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    this.retryTimer?.cancel();
    this.retryTimer = null;
    this.pending = false;
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    let gaveUp = false;
    const work = (async () => {
      if (this.inFlight) await this.inFlight;
      if (options.final === false) return;
      // The last report (often progress 100) matters most: retry it until the deadline.
      for (let attempt = 0; !gaveUp; attempt++) {
        const attemptDone = this.sendOnce();
        this.inFlight = attemptDone;
        const ok = await attemptDone;
        this.inFlight = null;
        if (ok) return;
        const wait = Math.min(backoffDelay(RETRY, attempt), deadline - Date.now());
        if (wait <= 0) return;
        await pause(wait);
      }
    })();
    let t: NodeJS.Timeout | undefined;
    await Promise.race([work, new Promise<void>((r) => (t = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
    gaveUp = true;
    clearTimeout(t);
  }
}
