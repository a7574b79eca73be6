// The buffers every session of one receiver process shares: incoming
// frames are gathered into pooled buffers (see protocol/buffer-pool.ts
// for why), and DATA payloads are decompressed (or copied) into page-aligned
// ones, which the target is written from with direct I/O, then given back.

import { BufferPool, once } from '../protocol/buffer-pool.js';
import { ALIGNED_SLOT_BYTES, RECEIVE_SLOT_BYTES } from '../protocol/sizes.js';

/** A whole frame carrying a sender's largest run (hashes, LZ4 worst case included) fits one (see protocol/sizes.ts). */
export { RECEIVE_SLOT_BYTES };

export const receiveBuffers = new BufferPool(RECEIVE_SLOT_BYTES, 64);

/** Direct I/O wants buffer addresses, file offsets and lengths aligned to the logical block size. */
export const DIRECT_ALIGN = 4096;

export interface AlignedBuffer {
  buf: Buffer;
  release(): void;
}

/**
 * Page-aligned buffers of at most `slotBytes`: views at multiples of
 * `slotBytes` into one fixed WebAssembly memory, whose base is page-aligned
 * (JavaScript cannot align an ordinary buffer: it cannot see addresses).
 * `take` returns undefined when every slot is in use or the memory cannot be
 * had; callers then use an ordinary buffer and a buffered write.
 */
export class AlignedPool {
  readonly slotBytes: number;
  private readonly slots: number;
  private memory: ArrayBuffer | undefined;
  private broken = false;
  private readonly free: number[] = [];

  constructor(slotBytes: number, slots: number) {
    this.slotBytes = slotBytes;
    this.slots = slots;
  }

  take(bytes: number): AlignedBuffer | undefined {
    if (bytes > this.slotBytes || this.broken) return undefined;
    if (!this.memory) {
      try {
        const pages = Math.ceil((this.slotBytes * this.slots) / 65536);
        this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer;
      } catch {
        this.broken = true;
        return undefined;
      }
      for (let i = this.slots - 1; i >= 0; i--) this.free.push(i * this.slotBytes);
    }
    const memory = this.memory;
    const at = this.free.pop();
    if (!memory || at === undefined) return undefined;
    return { buf: Buffer.from(memory, at, bytes), release: once(() => this.free.push(at)) };
  }

  /** True when `b` starts at an aligned address of this pool's memory. */
  holds(b: Uint8Array): boolean {
    return this.memory !== undefined && b.buffer === this.memory && b.byteOffset % DIRECT_ALIGN === 0;
  }
}

/** Enough aligned slots for the bytes one session keeps in flight (its pause threshold), and then some. */
export const alignedBuffers = new AlignedPool(ALIGNED_SLOT_BYTES, 48);
