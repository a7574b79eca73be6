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

  /**
   * Units per second as the least-squares slope over the window: unbiased
   * for counters that grow in steps (bytes done move when the receiver
   * acknowledges a commit), where rate() depends on where in a step the
   * window ends. Null until two samples span time.
   */
  slope(): number | null {
    const n = this.samples.length;
    if (n < 2 || this.span() <= 0) return null;
    const t0 = this.samples[0]!.t;
    let st = 0;
    let sv = 0;
    for (const x of this.samples) {
      st += x.t - t0;
      sv += x.v;
    }
    const mt = st / n;
    const mv = sv / n;
    let num = 0;
    let den = 0;
    for (const x of this.samples) {
      const dt = x.t - t0 - mt;
      num += dt * (x.v - mv);
      den += dt * dt;
    }
    return den > 0 ? (num / den) * 1000 : null;
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
