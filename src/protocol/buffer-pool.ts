// Fixed-size buffers, reused. The receiver gathers incoming frames and
// decompresses DATA payloads into these instead of fresh 1 MiB buffers:
// every fresh buffer costs page faults, an munmap and external-memory
// pressure that makes V8 run full garbage collections, which on the
// receiver cost more than the copies themselves. Whoever takes a buffer
// gives it back once nothing refers to it any more; a buffer never given
// back is simply left to the garbage collector.

export class BufferPool {
  readonly slotBytes: number;
  private readonly keep: number;
  private readonly free: Buffer[] = [];

  /** Buffers of `slotBytes`; at most `keep` idle ones are kept. */
  constructor(slotBytes: number, keep: number) {
    this.slotBytes = slotBytes;
    this.keep = keep;
  }

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.slotBytes);
  }

  give(b: Buffer): void {
    if (b.length === this.slotBytes && this.free.length < this.keep) this.free.push(b);
  }

  /** A release function for `b` that gives it back at most once. */
  releaser(b: Buffer): () => void {
    return once(() => this.give(b));
  }
}

/** `fn`, run on the first call only: a buffer given back twice would be handed out twice. */
export function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
