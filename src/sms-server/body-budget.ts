// The memory the control plane may spend on request bodies that are being
// received, over all requests at once. A request leases bytes before it
// buffers them (its declared Content-Length up front, or chunk by chunk when
// it declares none) and gives them back when it is answered; a request that
// would go over the budget is refused (429) instead of waited for, so slow
// or stalled senders can never make the process grow past it. Upload bodies
// stream to a file and need no lease.

export class BodyBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** Bytes leased now (for tests and logs). */
  get inUse(): number {
    return this.used;
  }

  lease(): BodyLease {
    let held = 0;
    return {
      limit: this.limit,
      take: (bytes: number) => {
        if (this.used + bytes > this.limit) return false;
        this.used += bytes;
        held += bytes;
        return true;
      },
      release: () => {
        this.used -= held;
        held = 0;
      },
    };
  }
}

export interface BodyLease {
  /** The whole budget's size (for messages). */
  readonly limit: number;
  /** Reserves `bytes` more; false (and nothing reserved) when that would exceed the budget. */
  take(bytes: number): boolean;
  /** Gives back everything this lease holds; safe to call more than once. */
  release(): void;
}
