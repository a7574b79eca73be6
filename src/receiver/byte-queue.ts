// A bounded hand-off of stream bytes from socket frames to a consumer that
// reads them as an async iterable (the file extractor). It counts bytes
// pushed and handed over, tells the producer side when to pause and resume
// the socket, and lets a commit wait until everything before an offset has
// been handed to the consumer. A buffer pushed with a `release` is given back
// (to its pool) once the consumer is done with it: when the consumer asks for
// the next buffer (its contract: parseTar keeps nothing of a buffer past
// that, see protocol/tar-format.ts), or, never handed over, when the queue
// fails. A buffer that was handed over when the queue fails is not given back
// (the consumer may still be reading it); the garbage collector takes it.

interface Item {
  b: Buffer;
  release: (() => void) | undefined;
}

export class ByteQueue implements AsyncIterable<Buffer> {
  private items: Item[] = [];
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

  /** Queues `b`; `release` is called once nothing refers to it any more (see the file's first comment). */
  push(b: Buffer, release?: () => void): void {
    if (this.ended || this.error) {
      release?.();
      return;
    }
    this.items.push({ b, release });
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
    for (const it of this.items) it.release?.();
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
    /** The release of the buffer handed over last: due when the consumer asks for the next one. */
    let held: (() => void) | undefined;
    try {
      for (;;) {
        held?.();
        held = undefined;
        if (this.error) throw this.error;
        const item = this.items.shift();
        if (!item) {
          if (this.ended) return;
          await new Promise<void>((r) => (this.wake = r));
          continue;
        }
        const b = item.b;
        this.queuedBytes -= b.length;
        this.consumed += b.length;
        if (this.queuedBytes <= this.lowWater) this.onPressure(false);
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          if (this.waiters[i]!.offset <= this.consumed) this.waiters.splice(i, 1)[0]!.resolve();
        }
        held = item.release;
        yield b;
      }
    } finally {
      // The consumer stopped (return() after a for-await break): it is done with the last buffer too.
      held?.();
    }
  }
}
