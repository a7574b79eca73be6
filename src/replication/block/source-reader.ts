// Reads a source volume (block device or image file) front to back in large
// sequential I/O, one read ahead of the consumer, into a small pool of
// reusable buffers: memory stays bounded and the garbage collector never
// sees gigabytes of short-lived reads. A read goes back to the pool when
// every holder (the scanner, frames still to be encoded) has released it.
// With ferry's native module, each read also hashes its chunks on the
// thread that read it (readHashed: see ReadHashing).

import { open } from 'node:fs/promises';
import { FerryError } from '../../errors/ferry-error.js';
import type { NativeReadHashed } from '../../platform/native-fs.js';

/** One read of the source: the unit the scanner hashes and compares. */
export const READ_BYTES = 4 * 1024 * 1024;
/** Reads in flight ahead of the consumer. */
export const READ_AHEAD = 2;

export class SourceRead {
  readonly offset: number;
  readonly data: Buffer;
  /** With ReadHashing: every chunk's canonical hash, u64 BE, chunk after chunk. */
  readonly hashes: Buffer | undefined;
  private refs = 1;
  private readonly onFree: () => void;

  constructor(offset: number, data: Buffer, onFree: () => void, hashes?: Buffer) {
    this.offset = offset;
    this.data = data;
    this.onFree = onFree;
    this.hashes = hashes;
  }

  retain(): void {
    this.refs += 1;
  }

  release(): void {
    this.refs -= 1;
    if (this.refs === 0) this.onFree();
  }
}

/**
 * Read buffers kept between the block passes of one process, so that a pass that follows another soon after
 * reads into memory that is already mapped (`blockReadReserve`).
 *
 * Why (issue 14, 2026-12-07, s36): a resident agent's warm no-change passes over a 1 GiB image were bimodal,
 * 130-153 ms or 162-209 ms. The slow ones were the passes whose three 4 MiB read buffers came from memory
 * that the C library had just given back to the kernel: about 3,000 minor page faults a pass (counted from
 * /proc/PID/stat around each pass), the fast ones 2-7. On this virtual machine a fresh anonymous page costs
 * about 15 us, 40-50 ms for 12 MiB: a third of the pass. Buffers are kept for `idleMs` after the last pass
 * handed them back, then dropped (the garbage collector frees them), so an idle service does not hold them.
 */
export class BufferReserve {
  private readonly kept: Buffer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly bytes: number;
  private readonly max: number;
  private readonly idleMs: number;

  constructor(bytes: number, max: number, idleMs: number) {
    this.bytes = bytes;
    this.max = max;
    this.idleMs = idleMs;
  }

  /** Buffers kept now. */
  get size(): number {
    return this.kept.length;
  }

  /** A kept buffer, if there is one. */
  take(): Buffer | undefined {
    return this.kept.pop();
  }

  /** Keeps `b` for the next pass: only a buffer nothing holds any more, of this reserve's size, up to `max`. */
  keep(b: Buffer): void {
    if (b.length !== this.bytes || this.kept.length >= this.max) return;
    this.kept.push(b);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.drop(), this.idleMs);
    this.timer.unref();
  }

  /** Lets every kept buffer go. */
  drop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.kept.length = 0;
  }
}

/**
 * READ_BYTES buffers kept between block passes: as many as a no-change or small-delta pass makes (the read
 * being scanned and the reads ahead, one spare), 16 MiB at most, for 10 s after the last pass.
 */
export const blockReadReserve = new BufferReserve(READ_BYTES, READ_AHEAD + 2, 10_000);

/**
 * A bounded set of equal buffers; `take` waits while all are in use, which
 * is what bounds the reader's memory. A buffer is made only when every one
 * made so far is in use, then reused: the bound is reached only when the
 * consumer falls behind (frames waiting to be encoded or sent), not on a
 * volume whose reads are released at once (zeros, unchanged chunks) or that
 * is smaller than the set (a BIOS boot partition of 1 MiB, a no-change
 * pass). A heap snapshot of the whole-server bench caught the ESP's block
 * pass (64 MiB, mostly zeros) holding all eight, 32 MB, made up front.
 * With a `reserve`, a buffer is taken from it before one is made, and once the
 * set is closed every buffer given back goes to it.
 * (Not the receiver's protocol/buffer-pool.ts, which never waits.)
 */
export class FixedBufferSet {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<(b: Buffer) => void> = [];
  private made = 0;
  private closed = false;
  private readonly count: number;
  private readonly bytes: number;
  private readonly reserve: BufferReserve | undefined;

  constructor(count: number, bytes: number, reserve?: BufferReserve) {
    this.count = count;
    this.bytes = bytes;
    this.reserve = reserve;
  }

  /** Buffers made so far (at most `count`). */
  get allocated(): number {
    return this.made;
  }

  take(): Promise<Buffer> {
    const b = this.free.pop();
    if (b) return Promise.resolve(b);
    if (this.made < this.count) {
      this.made += 1;
      return Promise.resolve(this.reserve?.take() ?? Buffer.allocUnsafeSlow(this.bytes));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** `b` is free: nothing reads into it or holds what was read (every SourceRead of it released). */
  give(b: Buffer): void {
    const w = this.waiting.shift();
    if (w) w(b);
    else if (this.closed && this.reserve) this.reserve.keep(b);
    else this.free.push(b);
  }

  /** The pass is over: the free buffers, and each one given back from now on, go to the reserve. */
  close(): void {
    this.closed = true;
    if (!this.reserve) return;
    for (const b of this.free.splice(0)) this.reserve.keep(b);
  }
}

/**
 * Hashing each read where it is read: the native module's readHashed reads and hashes on one of libuv's
 * pool threads, so the hashing of one read runs beside the next read and beside the main thread's work
 * (measured on the 1 GiB bench image, warm, 2 reads in flight: read alone 53-77 ms, read and hash
 * 104-134 ms, on the pool, where the main thread had hashed in WebAssembly for 93-115 ms a GiB after the
 * read). `chunkSize` must divide the read size.
 */
export interface ReadHashing {
  chunkSize: number;
  readHashed: NativeReadHashed;
}

export async function* readVolume(
  path: string,
  from: number,
  size: number,
  pool: FixedBufferSet,
  readBytes = READ_BYTES,
  hashing?: ReadHashing,
): AsyncGenerator<SourceRead> {
  const fh = await open(path, 'r');
  const ended = (at: number) => new FerryError('SMS.0805', `source ${path} ended at ${at}, expected ${size} bytes`);
  const inflight: Promise<SourceRead>[] = [];
  // Reads whose I/O has started, and whether the consumer has stopped (see the end).
  const io = new Set<Promise<SourceRead>>();
  let closed = false;
  try {
    const readAt = async (offset: number): Promise<SourceRead> => {
      const buf = await pool.take();
      if (closed) {
        pool.give(buf);
        throw new Error(`source ${path} was closed`);
      }
      const p = readInto(offset, buf);
      io.add(p);
      try {
        return await p;
      } finally {
        io.delete(p);
      }
    };
    const readInto = async (offset: number, buf: Buffer): Promise<SourceRead> => {
      const n = Math.min(readBytes, size - offset);
      const data = buf.subarray(0, n);
      if (hashing) {
        const hashes = Buffer.allocUnsafe(Math.ceil(n / hashing.chunkSize) * 8);
        let got: number;
        try {
          got = await hashing.readHashed(fh.fd, data, offset, hashing.chunkSize, hashes);
        } catch (e) {
          pool.give(buf);
          throw e;
        }
        if (got < n) {
          pool.give(buf);
          throw ended(offset + got);
        }
        return new SourceRead(offset, data, () => pool.give(buf), hashes);
      }
      let got = 0;
      while (got < n) {
        const { bytesRead } = await fh.read(data, got, n - got, offset + got);
        if (bytesRead === 0) {
          pool.give(buf);
          throw ended(offset + got);
        }
        got += bytesRead;
      }
      return new SourceRead(offset, data, () => pool.give(buf));
    };
    // Keep `READ_AHEAD` reads in flight: virtual disks reach their speed only with a queue.
    let nextOffset = from;
    const fill = () => {
      while (inflight.length < READ_AHEAD && nextOffset < size) {
        const p = readAt(nextOffset);
        p.catch(() => {});
        inflight.push(p);
        nextOffset += Math.min(readBytes, size - nextOffset);
      }
    };
    fill();
    while (inflight.length > 0) {
      const cur = await inflight.shift()!;
      fill();
      yield cur;
    }
  } finally {
    // When the consumer stops, reads whose I/O has started finish before the file closes: a native read uses
    // the fd by its number, which must not be closed (and perhaps reused) under it. A read still waiting for
    // a buffer does not start. Their buffers go back to the pool.
    closed = true;
    await Promise.allSettled(io);
    for (const p of inflight) p.then((r) => r.release(), () => {});
    await fh.close();
  }
}
