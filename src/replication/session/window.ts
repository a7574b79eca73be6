// The window of unacknowledged bytes, the back-pressure of every session: a
// sender may put bytes on the wire while what it sent and the receiver has
// not acknowledged stays within the limit (one send always fits an empty
// window, however large). What the engine counts (frame bytes for block,
// stream bytes for file) is its business; the rule is this.
//
// Must not touch: the wait itself (waits.ts), frames, acknowledgements' meaning.

export class UnackedWindow {
  readonly limit: number;
  /** Bytes sent and not yet acknowledged. */
  bytes = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Whether `n` more bytes may go out now. */
  fits(n: number): boolean {
    return this.bytes === 0 || this.bytes + n <= this.limit;
  }

  add(n: number): void {
    this.bytes += n;
  }

  /** Acknowledged (or refused and taken back). */
  remove(n: number): void {
    this.bytes -= n;
  }
}
