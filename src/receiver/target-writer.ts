// Writes a block session's data to its target, in the order given, one
// write at a time: concurrent writes to one file only contend for its inode
// lock. Writes queued while one is in flight are merged when they continue
// each other (one pwritev), so the disk gets large requests and waits little
// for the event loop between them. Data in page-aligned pooled buffers goes
// with direct I/O (no page cache to fill and write back: on the receiver the
// copy and the writeback cost more CPU than anything else) when the target
// allows it, else through the page cache. Durability is the caller's
// business (fdatasync at commit covers both kinds of write).
// Zero runs: on an image file a run of 1 MiB or more becomes a hole
// (fallocate --punch-hole, which keeps the size), so zeros cost neither disk
// space nor writes; elsewhere (block devices, file systems that cannot punch)
// zeros are written 1 MiB at a time, and stop() ends that between slices,
// so a closing session never waits on a long run.

import type { FileHandle } from 'node:fs/promises';
import { fdPath } from '../platform/fd-path.js';
import { FerryError, errorMessage } from '../errors/ferry-error.js';
import { exec } from '../platform/exec.js';
import { DIRECT_ALIGN, alignedBuffers } from './receive-buffers.js';

/** A merged write carries at most this many bytes … */
export const MAX_MERGED_BYTES = 8 * 1024 * 1024;
/** … in at most this many buffers. */
const MAX_MERGED_BUFFERS = 64;
const ZEROS = Buffer.alloc(1024 * 1024);
/** Zero runs at least this long are punched as holes where the target allows it. */
const PUNCH_FROM = ZEROS.length;

export interface TargetWriterOptions {
  /** The target is a regular file: punch zero runs as holes. */
  punchHoles?: boolean;
  /** Called once if punching is refused (zeros are written from then on). */
  onPunchRefused?: (why: string) => void;
}

type Job =
  | { kind: 'data'; at: number; data: Buffer; resolve: () => void; reject: (e: unknown) => void }
  | { kind: 'zero'; lo: number; hi: number; resolve: () => void; reject: (e: unknown) => void };
type DataJob = Extract<Job, { kind: 'data' }>;

export class TargetWriter {
  private readonly target: FileHandle;
  private direct: FileHandle | undefined;
  private readonly name: string;
  private readonly onDirectRefused: () => void;
  private readonly queue: Job[] = [];
  private busy = false;
  private punch: boolean;
  private readonly onPunchRefused: (why: string) => void;
  private stopped = false;
  /** Writes issued to the target (a merged write counts once). */
  writes = 0;

  /** `direct`: the same target opened with O_DIRECT, if that worked. */
  constructor(target: FileHandle, direct: FileHandle | undefined, name: string, onDirectRefused: () => void, options: TargetWriterOptions = {}) {
    this.target = target;
    this.direct = direct;
    this.name = name;
    this.onDirectRefused = onDirectRefused;
    this.punch = options.punchHoles ?? false;
    this.onPunchRefused = options.onPunchRefused ?? (() => {});
  }

  /** Zero runs not yet done are abandoned (their promises reject): the session is closing. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves once `data` is written at `at` (the caller keeps `data` unchanged until then). */
  write(data: Buffer, at: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'data', at, data, resolve, reject });
      this.pump();
    });
  }

  /** Resolves once [lo, hi) reads as zeros. */
  zeros(lo: number, hi: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'zero', lo, hi, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    const d = this.direct;
    this.direct = undefined;
    await d?.close().catch(() => {});
  }

  private canDirect(j: DataJob): boolean {
    return this.direct !== undefined && alignedBuffers.holds(j.data) && j.at % DIRECT_ALIGN === 0 && j.data.length % DIRECT_ALIGN === 0;
  }

  private pump(): void {
    if (this.busy || this.queue.length === 0) return;
    this.busy = true;
    const first = this.queue[0]!;
    let batch: Job[] = [first];
    if (first.kind === 'data') {
      const direct = this.canDirect(first);
      let end = first.at + first.data.length;
      let bytes = first.data.length;
      for (let i = 1; i < this.queue.length && batch.length < MAX_MERGED_BUFFERS; i++) {
        const j = this.queue[i]!;
        if (j.kind !== 'data' || j.at !== end || bytes + j.data.length > MAX_MERGED_BYTES || this.canDirect(j) !== direct) break;
        batch.push(j);
        end += j.data.length;
        bytes += j.data.length;
      }
    }
    this.queue.splice(0, batch.length);
    const run = first.kind === 'zero' ? this.writeZeros(first.lo, first.hi) : this.writeData(batch as DataJob[]);
    void run
      .then(
        () => {
          for (const j of batch) j.resolve();
        },
        (e: unknown) => {
          for (const j of batch) j.reject(e);
        },
      )
      .finally(() => {
        batch = [];
        this.busy = false;
        this.pump();
      });
  }

  private async writeData(jobs: DataJob[]): Promise<void> {
    const bufs = jobs.map((j) => j.data);
    const at = jobs[0]!.at;
    let done = 0;
    const direct = this.direct;
    if (direct && this.canDirect(jobs[0]!)) {
      try {
        this.writes += 1;
        done = (await direct.writev(bufs, at)).bytesWritten;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        // This target (or file system) does not take direct I/O after all: the page cache it is, for good.
        if (this.direct === direct) {
          this.direct = undefined;
          this.onDirectRefused();
          await direct.close().catch(() => {});
        }
      }
    } else if (bufs.length > 1) {
      this.writes += 1;
      done = (await this.target.writev(bufs, at)).bytesWritten;
    }
    // Whatever is left (a short write, a refused direct write, a single buffer) goes piece by piece.
    let pos = 0;
    for (const b of bufs) {
      const skip = Math.max(0, Math.min(b.length, done - pos));
      for (let off = skip; off < b.length; ) {
        this.writes += 1;
        const { bytesWritten } = await this.target.write(b, off, b.length - off, at + pos + off);
        if (bytesWritten === 0) throw new FerryError('SMS.0805', `no bytes written to target ${this.name} at ${at + pos + off}`);
        off += bytesWritten;
      }
      pos += b.length;
    }
  }

  private async writeZeros(lo: number, hi: number): Promise<void> {
    if (this.punch && hi - lo >= PUNCH_FROM) {
      this.checkStopped(lo, hi);
      try {
        // Through this process's descriptor, so the hole lands in the file this session opened.
        const path = fdPath(this.target.fd);
        await exec('fallocate', ['--punch-hole', '--offset', String(lo), '--length', String(hi - lo), path], { timeoutMs: 120_000 });
        this.writes += 1;
        return;
      } catch (e) {
        this.punch = false;
        this.onPunchRefused(errorMessage(e));
      }
    }
    for (let p = lo; p < hi; p += ZEROS.length) {
      this.checkStopped(p, hi);
      this.writes += 1;
      await this.target.write(ZEROS, 0, Math.min(ZEROS.length, hi - p), p);
    }
  }

  private checkStopped(lo: number, hi: number): void {
    if (this.stopped) throw new FerryError('FERRY_SESSION_CLOSED', `target ${this.name}: the session closed before [${lo}, ${hi}) was zeroed`);
  }
}
