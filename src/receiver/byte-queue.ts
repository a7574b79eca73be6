// A bounded hand-off of stream bytes from socket frames to a consumer that
// reads them as an async iterable (the file extractor). It counts bytes
// pushed and handed over, tells the producer side when to pause and resume
// the socket, and lets a commit wait until everything before an offset has
// been handed to the consumer.

export class ByteQueue implements AsyncIterable<Buffer> {
  private items: Buffer[] = [];
  private queuedBytes = 0;
  private wake: (() => void) | null = null;
  private ended = false;
  private error: Error | null = null;
  private readonly waiters: { offset: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Bytes handed to the consumer so far. */
  consumed = 0;
  /** Bytes pushed so far. */
  received = 0;

  constructor(
    private readonly highWater: number,
    private readonly lowWater: number,
    private readonly onPressure: (paused: boolean) => void,
  ) {}

  get queued(): number {
    return this.queuedBytes;
  }

  push(b: Buffer): void {
    if (this.ended || this.error) return;
    this.items.push(b);
    this.queuedBytes += b.length;
    this.received += b.length;
    if (this.queuedBytes > this.highWater) this.onPressure(true);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    this.items = [];
    for (const w of this.waiters.splice(0)) w.reject(e);
    this.notify();
  }

  /** Resolves once every byte before `offset` has been handed to the consumer. */
  handedOver(offset: number): Promise<void> {
    if (this.consumed >= offset) return Promise.resolve();
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => this.waiters.push({ offset, resolve, reject }));
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.error) throw this.error;
      const b = this.items.shift();
      if (b) {
        this.queuedBytes -= b.length;
        this.consumed += b.length;
        if (this.queuedBytes <= this.lowWater) this.onPressure(false);
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          if (this.waiters[i]!.offset <= this.consumed) this.waiters.splice(i, 1)[0]!.resolve();
        }
        yield b;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}
