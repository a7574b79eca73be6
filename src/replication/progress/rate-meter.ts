// The rate of a growing counter over a trailing window (bytes per second),
// from samples of its cumulative value. Used for migrate_speed (wire bytes
// over 10 s) and for remain_time (bytes done over 30 s).

export class RateMeter {
  private samples: { t: number; v: number }[] = [];

  constructor(
    readonly windowMs: number,
    /** Samples closer together than this replace the newest one (bounded memory). */
    readonly resolutionMs = 250,
  ) {}

  add(t: number, value: number): void {
    const last = this.samples[this.samples.length - 1];
    const prev = this.samples[this.samples.length - 2];
    if (last && prev && t - prev.t < this.resolutionMs) {
      last.t = t;
      last.v = value;
    } else {
      this.samples.push({ t, v: value });
    }
    // Keep one sample at or before the window start so the span covers the window.
    while (this.samples.length > 2 && t - this.samples[1]!.t >= this.windowMs) this.samples.shift();
  }

  /** Units per second over the window ending at the newest sample; null until two samples span time. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t <= first.t) return null;
    return ((last.v - first.v) * 1000) / (last.t - first.t);
  }

  /** How long the samples span (ms). */
  span(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    return first && last ? last.t - first.t : 0;
  }

  reset(): void {
    this.samples = [];
  }
}
