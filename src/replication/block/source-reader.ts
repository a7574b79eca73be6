// Reads a source volume (block device or image file) front to back in large
// sequential I/O, one read ahead of the consumer, into a small pool of
// reusable buffers: memory stays bounded and the garbage collector never
// sees gigabytes of short-lived reads. A read goes back to the pool when
// every holder (the scanner, frames still to be encoded) has released it.
// With ferry's native module, each read also hashes its chunks on the
// thread that read it (readHashed: see ReadHashing).

import { open } from 'node:fs/promises';
import { FerryError } from '../../errors/ferry-error.js';
import type { NativeReadHashed, NativeScanSame } from '../../platform/native-fs.js';

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
  /** Stretches that have not changed, read in one pool job each (see Stretches); absent: every read on its own. */
  stretches?: Stretches;
}

/**
 * A stretch of the volume checked against the receiver's entries natively, sixteen reads in one trip to libuv's
 * pool (scanSame): two jobs take alternate reads of it, so the reads still go to the disk in order, two at a time,
 * as plain reads do. Where it differs, the read that differs is yielded as a SourceRead and the rest of the
 * stretch is read read by read.
 *
 * Why (issue 14, 2026-12-07, s36): each readHashed cost a resident agent's warm no-change pass 0.8-0.9 ms
 * against 0.55 ms of reading and hashing, the rest the hand-off to the pool and back (docs/replication.md s36).
 */
export interface Stretches {
  scanSame: NativeScanSame;
  /**
   * The receiver's entries for [offset, offset + length) when a scan of it can pay: every entry known (none
   * UNKNOWN: a first pass has nothing to compare with) and all of them at hand; else undefined.
   */
  expected(offset: number, length: number): Promise<Buffer | undefined>;
  /** Stops a running scan at its next read (the pass's signal); readVolume then ends after what matched. */
  signal?: AbortSignal;
}

/** A stretch scanned by Stretches. */
export const STRETCH_BYTES = 64 * 1024 * 1024;
/** Where a stretch cannot be scanned, this much is read read by read before the next try. */
const PLAIN_BYTES = 16 * STRETCH_BYTES;
/**
 * After a stretch that differed, read by read up to 2, 4, … 16 stretches from its start (doubling with each such
 * stretch in a row; one that matched throughout starts again at 1): a volume that changes everywhere (a full copy
 * onto a target the receiver knows to be zeros, a delta after scattered writes) is read as before, with few
 * scans that stop early and few places where the reads ahead drain.
 */
const MAX_BACKOFF = 4;

/** A stretch of the volume whose every chunk equals the receiver's entry (`expected`, u64 BE each). */
export class SameStretch {
  readonly offset: number;
  readonly length: number;
  readonly expected: Buffer;

  constructor(offset: number, length: number, expected: Buffer) {
    this.offset = offset;
    this.length = length;
    this.expected = expected;
  }
}

/**
 * The volume from `from` to `size`, read by read (SourceRead) into `pool`'s buffers, in order; with
 * `hashing.stretches`, unchanged stretches come as a SameStretch each instead of their reads.
 */
export function readVolume(path: string, from: number, size: number, pool: FixedBufferSet, readBytes?: number, hashing?: ReadHashing & { stretches?: undefined }): AsyncGenerator<SourceRead>;
export function readVolume(path: string, from: number, size: number, pool: FixedBufferSet, readBytes?: number, hashing?: ReadHashing): AsyncGenerator<SourceRead | SameStretch>;
export async function* readVolume(
  path: string,
  from: number,
  size: number,
  pool: FixedBufferSet,
  readBytes = READ_BYTES,
  hashing?: ReadHashing,
): AsyncGenerator<SourceRead | SameStretch> {
  const fh = await open(path, 'r');
  const ended = (at: number) => new FerryError('SMS.0805', `source ${path} ended at ${at}, expected ${size} bytes`);
  // Reads whose I/O has started, and whether the consumer has stopped (see the end).
  const io = new Set<Promise<unknown>>();
  let closed = false;
  const started = <T>(p: Promise<T>): Promise<T> => {
    io.add(p);
    const gone = () => io.delete(p);
    p.then(gone, gone);
    return p;
  };
  try {
    const readAt = async (offset: number, to: number): Promise<SourceRead> => {
      const buf = await pool.take();
      if (closed) {
        pool.give(buf);
        throw new Error(`source ${path} was closed`);
      }
      return started(readInto(offset, to, buf));
    };
    const readInto = async (offset: number, to: number, buf: Buffer): Promise<SourceRead> => {
      const n = Math.min(readBytes, to - offset);
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
    // [from, to) read by read, keeping `READ_AHEAD` reads in flight: virtual disks reach their speed only with a queue.
    async function* plain(start: number, to: number): AsyncGenerator<SourceRead> {
      const inflight: Promise<SourceRead>[] = [];
      let nextOffset = start;
      const fill = () => {
        while (inflight.length < READ_AHEAD && nextOffset < to) {
          const p = readAt(nextOffset, to);
          p.catch(() => {});
          inflight.push(p);
          nextOffset += Math.min(readBytes, to - nextOffset);
        }
      };
      try {
        fill();
        while (inflight.length > 0) {
          const cur = await inflight.shift()!;
          fill();
          yield cur;
        }
      } finally {
        // Reads not handed out (the consumer stopped, or one failed) give their buffers back once done.
        for (const p of inflight) p.then((r) => r.release(), () => {});
      }
    }
    // [start, end) scanned by two jobs taking alternate reads; what matched, then the read that did not (if any).
    // `differed`: a read that differs is among the items. `halted`: the pass was stopped during the scan
    // (Stretches.signal); the items are then the part that matched.
    type Scanned = { items: Array<SourceRead | SameStretch>; next: number; differed: boolean; halted: boolean };
    const scan = async (st: Stretches, h: ReadHashing, start: number, end: number, expected: Buffer): Promise<Scanned> => {
      const cs = h.chunkSize;
      const jobs = end - start > readBytes ? 2 : 1;
      const bufs: Buffer[] = [];
      for (let i = 0; i < jobs; i++) bufs.push(await pool.take());
      if (closed) {
        for (const b of bufs) pool.give(b);
        throw new Error(`source ${path} was closed`);
      }
      const hashes = bufs.map(() => Buffer.allocUnsafe(Math.ceil(readBytes / cs) * 8));
      // Shared by both jobs: the first to stop keeps the other from reading on past it (and the end stops both). 0
      // stops both at their next read: the pass stopped, or the other job could not start.
      const limit = new BigInt64Array([BigInt(end)]);
      let halted = false;
      const halt = () => {
        halted = true;
        Atomics.store(limit, 0, 0n);
      };
      if (st.signal?.aborted) halt();
      st.signal?.addEventListener('abort', halt, { once: true });
      // A call that throws (arguments refused, the job not started) becomes a rejection like a failed read.
      const runs = bufs.map((b, i) =>
        started(
          (async () => {
            try {
              return await st.scanSame(fh.fd, b.subarray(0, readBytes), start + i * readBytes, cs, hashes[i]!, start, jobs * readBytes, end, expected, limit);
            } catch (e) {
              Atomics.store(limit, 0, 0n);
              throw e;
            }
          })(),
        ),
      );
      const settled = await Promise.allSettled(runs);
      st.signal?.removeEventListener('abort', halt);
      const failed = settled.find((r) => r.status === 'rejected');
      if (failed) {
        for (const b of bufs) pool.give(b);
        throw (failed as PromiseRejectedResult).reason;
      }
      const results = settled.map((r) => (r as PromiseFulfilledResult<{ at: number; got: number }>).value);
      // Every read below the first stop was read and matched by the job it fell to (each stops at its first change).
      const stop = Math.min(...results.map((r) => r.at));
      const items: Array<SourceRead | SameStretch> = [];
      if (stop > start) items.push(new SameStretch(start, stop - start, expected.subarray(0, Math.ceil((stop - start) / cs) * 8)));
      // Only the job whose read stopped the scan holds one to hand on (the other's, further on, is read again).
      // Stopped by the signal, a job's `at` may be a read it did not make: nothing after the matched part goes on.
      const holder = halted || stop === end ? -1 : results.findIndex((r) => r.at === stop);
      for (const [i, b] of bufs.entries()) if (i !== holder) pool.give(b);
      if (holder < 0) return { items, next: stop, differed: false, halted };
      const buf = bufs[holder]!;
      const n = Math.min(readBytes, end - stop);
      if (results[holder]!.got < n) {
        pool.give(buf);
        throw ended(stop + results[holder]!.got);
      }
      items.push(new SourceRead(stop, buf.subarray(0, n), () => pool.give(buf), hashes[holder]!.subarray(0, Math.ceil(n / cs) * 8)));
      return { items, next: stop + n, differed: true, halted };
    };
    let pos = from;
    // Stretches in a row that differed (the backoff's exponent, at most MAX_BACKOFF).
    let inARow = 0;
    while (pos < size) {
      const st = hashing?.stretches;
      let to = size;
      if (st && hashing) {
        // Stretches at whole multiples of STRETCH_BYTES in the volume: a manifest range (65,536 chunks of at least
        // 4 KiB: 256 MiB or more) then never splits one, after a resumed start too.
        const end = Math.min(size, pos - (pos % STRETCH_BYTES) + STRETCH_BYTES);
        const expected = await st.expected(pos, end - pos);
        if (expected) {
          const start = pos;
          const scanned = await scan(st, hashing, pos, end, expected);
          const { items, next, halted } = scanned;
          inARow = scanned.differed ? Math.min(inARow + 1, MAX_BACKOFF) : 0;
          let handed = 0;
          try {
            for (const item of items) {
              handed += 1;
              yield item;
            }
          } finally {
            // The consumer stopped: the read it was not given goes back.
            for (const item of items.slice(handed)) if (item instanceof SourceRead) item.release();
          }
          // The pass was stopped: no more reads (the consumer sees the signal and ends the pass).
          if (halted) return;
          pos = next;
          to = inARow > 0 ? Math.min(size, start - (start % STRETCH_BYTES) + STRETCH_BYTES * 2 ** inARow) : end;
        } else to = Math.min(size, pos - (pos % PLAIN_BYTES) + PLAIN_BYTES);
      }
      if (pos < to) yield* plain(pos, to);
      pos = to;
    }
  } finally {
    // When the consumer stops, reads whose I/O has started finish before the file closes: a native read uses
    // the fd by its number, which must not be closed (and perhaps reused) under it. A read still waiting for
    // a buffer does not start. Their buffers go back to the pool.
    closed = true;
    while (io.size > 0) await Promise.allSettled([...io]);
    await fh.close();
  }
}
