// How often a session tells its listener where it is: at most once per
// interval, unless forced (phase changes, the end).
//
// Must not touch: what a progress report holds (the engines build it).

export const PROGRESS_EVERY_MS = 500;

export class ProgressTicker {
  private last = 0;
  private readonly everyMs: number;

  constructor(everyMs = PROGRESS_EVERY_MS) {
    this.everyMs = everyMs;
  }

  /** Whether a report is due now (and, if so, counts it as made). */
  due(force = false): boolean {
    const now = Date.now();
    if (!force && now - this.last < this.everyMs) return false;
    this.last = now;
    return true;
  }
}
