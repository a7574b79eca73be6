// When a session sends its next COMMIT: after so many bytes since the last
// one, or after so long with bytes uncommitted. The byte threshold may
// start low and double with every acknowledged commit up to its maximum, so
// a flaky link still gets commits through while a good one pays few fsyncs
// on the receiver. Each engine gives its own numbers and says why.
//
// Must not touch: the COMMIT frame, commit ids, what a commit covers.

export interface CommitPace {
  /** Bytes after which the first commit of a session is due … */
  firstBytes: number;
  /** … doubling with each acknowledged commit up to this. */
  maxBytes: number;
  /** A commit is also due once bytes have waited this long uncommitted. */
  everyMs: number;
}

export class CommitPacer {
  /** Bytes sent since the last commit. */
  bytesSince = 0;
  private every: number;
  private lastAt = Date.now();
  private readonly pace: CommitPace;

  constructor(pace: CommitPace) {
    this.pace = pace;
    this.every = pace.firstBytes;
  }

  added(n: number): void {
    this.bytesSince += n;
  }

  /** Whether anything was sent since the last commit. */
  get pending(): boolean {
    return this.bytesSince > 0;
  }

  due(now = Date.now()): boolean {
    return this.bytesSince >= this.every || (this.bytesSince > 0 && now - this.lastAt >= this.pace.everyMs);
  }

  committed(now = Date.now()): void {
    this.lastAt = now;
    this.bytesSince = 0;
  }

  acknowledged(): void {
    this.every = Math.min(this.pace.maxBytes, this.every * 2);
  }
}
