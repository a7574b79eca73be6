// Over-speed protection (SMS over_speed_threshold): watches the measured
// wire rate and, when it stays above limit × (1 + threshold %) for a whole
// window, calls onOverSpeed once so that the caller stops the task. The
// gate keeps a task under its limit, so this trips only when something
// bypasses the gate or the limit drops below what is already committed —
// it is the guard, not the governor.
//
// Every second the detector samples the byte count. A sample is "over" when
// both the rate over the trailing window (default 10 s) and the rate since
// the previous sample exceed the allowed rate, so a short spike that is
// still inside the window does not count. It fires when every sample for the
// sustain period (default 10 s) is over, and only judges a full window
// measured under one unchanged limit.

import { FerryError } from '../../errors/ferry-error.js';
import type { Clock, TimerHandle } from './clock.js';

export interface OverSpeedInfo {
  measuredMbps: number;
  limitMbps: number;
  thresholdPct: number;
  allowedMbps: number;
  windowMs: number;
}

export interface OverSpeedOptions {
  clock: Clock;
  /** Cumulative bytes on the wire so far (all connections of the task). */
  wireBytes: () => number;
  /** The limit and threshold in force now (null = no limit / protection off). */
  limit: () => { limitMbps: number | null; overSpeedThresholdPct: number | null };
  onOverSpeed: (info: OverSpeedInfo) => void;
  windowMs?: number;
  sustainMs?: number;
  sampleMs?: number;
}

export class OverSpeedDetector {
  private samples: { t: number; bytes: number }[] = [];
  private overSince: number | null = null;
  private key = '';
  private timer: TimerHandle | null = null;
  private fired = false;
  readonly windowMs: number;
  readonly sustainMs: number;
  readonly sampleMs: number;

  constructor(private readonly o: OverSpeedOptions) {
    this.windowMs = o.windowMs ?? 10_000;
    this.sustainMs = o.sustainMs ?? 10_000;
    this.sampleMs = o.sampleMs ?? 1_000;
  }

  start(): void {
    this.sample();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** Takes one sample and judges it (the timer calls this every sampleMs). */
  sample(): void {
    this.timer?.cancel();
    const now = this.o.clock.now();
    const bytes = this.o.wireBytes();
    const { limitMbps, overSpeedThresholdPct } = this.o.limit();
    const key = `${limitMbps}/${overSpeedThresholdPct}`;
    if (key !== this.key) {
      // A new limit: judge only what was sent under it.
      this.key = key;
      this.samples = [];
      this.overSince = null;
    }
    this.samples.push({ t: now, bytes });
    while (this.samples.length > 1 && now - this.samples[1]!.t >= this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const span = now - first.t;
    if (limitMbps !== null && overSpeedThresholdPct !== null && span >= this.windowMs && !this.fired) {
      const measuredMbps = ((bytes - first.bytes) * 8) / 1e6 / (span / 1000);
      const prev = this.samples[this.samples.length - 2]!;
      const lastMbps = ((bytes - prev.bytes) * 8) / 1e6 / Math.max(0.001, (now - prev.t) / 1000);
      const allowedMbps = limitMbps * (1 + overSpeedThresholdPct / 100);
      if (measuredMbps > allowedMbps && lastMbps > allowedMbps) {
        this.overSince ??= now;
        if (now - this.overSince >= this.sustainMs) {
          this.fired = true;
          this.o.onOverSpeed({ measuredMbps, limitMbps, thresholdPct: overSpeedThresholdPct, allowedMbps, windowMs: span });
          return;
        }
      } else {
        this.overSince = null;
      }
    }
    this.timer = this.o.clock.setTimer(() => this.sample(), this.sampleMs);
  }
}

/** The error a task stopped by over-speed protection ends with. */
export function overSpeedError(i: OverSpeedInfo): FerryError {
  return new FerryError(
    'FERRY_OVER_SPEED',
    `migration stopped by over-speed protection: measured ${i.measuredMbps.toFixed(1)} Mbit/s over ${Math.round(i.windowMs / 1000)} s, ` +
      `above the limit of ${i.limitMbps} Mbit/s + ${i.thresholdPct}% (${i.allowedMbps.toFixed(1)} Mbit/s); check the speed-limit rules and restart the task`,
    { details: i },
  );
}
