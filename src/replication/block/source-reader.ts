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
 * A bounded set of equal buffers; `take` waits while all are in use, which
 * is what bounds the reader's memory. A buffer is made only when every one
 * made so far is in use, then reused: the bound is reached only when the
 * consumer falls behind (frames waiting to be encoded or sent), not on a
 * volume whose reads are released at once (zeros, unchanged chunks) or that
 * is smaller than the set (a BIOS boot partition of 1 MiB, a no-change
 * pass). A heap snapshot of the whole-server bench caught the ESP's block
 * pass (64 MiB, mostly zeros) holding all eight, 32 MB, made up front.
 * (Not the receiver's protocol/buffer-pool.ts, which never waits.)
 */
export class FixedBufferSet {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<(b: Buffer) => void> = [];
  private made = 0;
  private readonly count: number;
  private readonly bytes: number;

  constructor(count: number, bytes: number) {
    this.count = count;
    this.bytes = bytes;
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
      return Promise.resolve(Buffer.allocUnsafeSlow(this.bytes));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(b: Buffer): void {
    const w = this.waiting.shift();
    if (w) w(b);
    else this.free.push(b);
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
