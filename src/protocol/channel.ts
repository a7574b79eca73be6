// A frame channel over one socket: writes frames with back-pressure (a write
// waits for 'drain' once the socket buffer is full) and hands each decoded
// incoming frame to a handler, in order. Both the agent's session and the
// receiver use it; it knows frame boundaries, not frame meanings.
// Reading is paused while any holder asks (pauseReading/resumeReading), so
// that independent reasons to stop reading (a session's pending writes, the
// handshake, a peer that does not read its replies) never undo each other.

import type { Socket } from 'node:net';
import { FerryError } from '../errors/ferry-error.js';
import type { BufferPool } from './buffer-pool.js';
import { FrameDecoder, MAX_FRAME_BYTES, type RawFrame } from './frames.js';

/**
 * A paced frame goes to the socket in slices of at most this many bytes,
 * each admitted by the gate first, so that a rate limit holds on the wire
 * even for frames larger than the gate's burst (a 2 MiB frame is 0.8 s at
 * 20 Mbit/s).
 */
export const PACE_SLICE_BYTES = 64 * 1024;

/**
 * Admits bytes onto the wire. The engines call `acquire(n)` before writing
 * n bytes (after compression) to the socket; a rate limiter shared by all of
 * a task's connections implements it (replication/throttle). Rejects when
 * `signal` aborts.
 */
export interface ByteGate {
  acquire(bytes: number, signal?: AbortSignal): Promise<void>;
}

export type FrameHandler = (frame: RawFrame) => void;

export class FrameChannel {
  readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private handler: FrameHandler | undefined;
  private closedError: Error | undefined;
  private readonly closeWaiters: Array<(e: Error) => void> = [];
  /** Bytes written to the socket, frames included. */
  bytesWritten = 0;
  /** Bytes read from the socket, frames included. */
  bytesRead = 0;

  /** Why reading is paused; reading resumes once none is left. */
  private readonly readHolds = new Set<string>();
  private readonly holdReadsWhileWriteBlocked: boolean;

  /**
   * With `pool`, large incoming frames are gathered into its buffers (see RawFrame.release).
   * With `holdReadsWhileWriteBlocked`, nothing more is read from a peer while
   * the socket cannot take what is written to it (the receiver: a peer that
   * sends requests without reading the replies makes no work and no memory
   * pile up; it stalls instead).
   */
  constructor(socket: Socket, options: { maxFrameBytes?: number; onDecodeError: (e: Error) => void; pool?: BufferPool; holdReadsWhileWriteBlocked?: boolean }) {
    this.socket = socket;
    this.decoder = new FrameDecoder(options.maxFrameBytes ?? MAX_FRAME_BYTES, options.pool);
    this.holdReadsWhileWriteBlocked = options.holdReadsWhileWriteBlocked ?? false;
    if (this.holdReadsWhileWriteBlocked) socket.on('drain', () => this.resumeReading('peer-not-reading'));
    socket.on('data', (data: Buffer) => {
      if (this.closedError) return;
      this.bytesRead += data.length;
      let frames: RawFrame[];
      try {
        frames = this.decoder.push(data);
      } catch (e) {
        // The stream is out of step from here on: it is never read again.
        this.pauseReading('malformed');
        options.onDecodeError(e as Error);
        return;
      }
      for (const f of frames) {
        if (this.closedError) return;
        this.handler?.(f);
      }
    });
    const onGone = (err?: Error) => this.markClosed(err ?? new FerryError('SMS.0807', 'connection closed by peer'));
    socket.on('error', (e) => onGone(new FerryError('SMS.0807', `network error between source and target: ${e.message}`, { cause: e })));
    socket.on('close', () => onGone());
    socket.on('end', () => onGone());
  }

  onFrame(handler: FrameHandler): void {
    this.handler = handler;
  }

  /** Changes the cap on incoming frames (and the pool) for the frames still to come. */
  setFrameLimits(maxFrameBytes: number, pool?: BufferPool): void {
    this.decoder.setLimits(maxFrameBytes, pool);
  }

  /** Stops reading from the socket until every reason given here is resumed. */
  pauseReading(reason: string): void {
    this.readHolds.add(reason);
    this.socket.pause();
  }

  resumeReading(reason: string): void {
    if (!this.readHolds.delete(reason) || this.readHolds.size > 0 || this.closedError) return;
    this.socket.resume();
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Resolves when the connection is gone, with the reason. */
  whenClosed(): Promise<Error> {
    if (this.closedError) return Promise.resolve(this.closedError);
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  private markClosed(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    for (const w of this.closeWaiters.splice(0)) w(e);
  }

  /**
   * Writes one encoded frame; resolves once the socket can take more. With
   * `pace`, the frame is written in slices, each admitted by the gate. Frames
   * never interleave: a send waits for the one before it. If the gate rejects
   * (abort, over-speed), the rest of the frame is still written, unpaced, so
   * that the stream stays well-formed and a frame the caller counts as sent
   * is on the wire; then the gate's error is thrown.
   */
  async send(frame: Buffer | Buffer[], pace?: { gate: ByteGate; signal?: AbortSignal }, onFlushed?: () => void): Promise<void> {
    const parts = Array.isArray(frame) ? frame : [frame];
    // `onFlushed` runs once the socket is done with every byte of the frame it was handed (the caller may then
    // reuse them): after the write callback of each slice handed to it (Node calls one on success, error or
    // destroy, never before write returns), and once no more will be handed (sent, or failed before or
    // between slices: a peer's FIN leaves the socket writing what it holds).
    let held = 0;
    let over = false;
    let freed = false;
    const free = (): void => {
      if (freed || !over || held > 0) return;
      freed = true;
      onFlushed!();
    };
    const written = onFlushed
      ? (): void => {
          held--;
          free();
        }
      : undefined;
    const put = (slices: Buffer[]): boolean => {
      if (slices.length === 0) return true; // nothing to write, no callback to wait for
      const ok = this.put(slices, written);
      if (written) held++;
      return ok;
    };
    const prev = this.writeTail;
    let release!: () => void;
    this.writeTail = new Promise<void>((r) => (release = r));
    try {
      await prev;
      if (!pace) return await this.drained(put(parts));
      let paceError: unknown;
      for (const part of parts) {
        for (let off = 0; off < part.length; off += PACE_SLICE_BYTES) {
          const slice = part.subarray(off, Math.min(part.length, off + PACE_SLICE_BYTES));
          if (paceError === undefined) {
            try {
              await pace.gate.acquire(slice.length, pace.signal);
            } catch (e) {
              paceError = e;
            }
          }
          await this.drained(put([slice]));
        }
      }
      if (paceError !== undefined) throw paceError;
    } finally {
      over = true;
      if (onFlushed) free();
      release();
    }
  }

  private writeTail: Promise<void> = Promise.resolve();

  /**
   * Writes buffers back to back (corked: one TLS record run) and returns whether the socket can take more.
   * Throws, with nothing written, once the connection is gone; else `onFlushed` (given to the last buffer's
   * write) is the socket's to call.
   */
  private put(parts: Buffer[], onFlushed?: () => void): boolean {
    if (this.closedError) throw this.closedError;
    let ok = true;
    const cb = onFlushed && (() => onFlushed());
    if (parts.length === 1) {
      this.bytesWritten += parts[0]!.length;
      ok = this.socket.write(parts[0]!, cb);
    } else {
      this.socket.cork();
      parts.forEach((p, i) => {
        this.bytesWritten += p.length;
        ok = this.socket.write(p, i === parts.length - 1 ? cb : undefined);
      });
      this.socket.uncork();
    }
    return ok;
  }

  /** After `put` returned `ok`: waits for 'drain' when the socket was full. */
  private async drained(ok: boolean): Promise<void> {
    if (ok) return;
    // The socket holds more than its high-water mark: the peer is not reading
    // as fast as we answer. Stop reading its requests until 'drain'.
    if (this.holdReadsWhileWriteBlocked) this.pauseReading('peer-not-reading');
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        cleanup();
        resolve();
      };
      const onClose = (e: Error) => {
        cleanup();
        reject(e);
      };
      const cleanup = () => {
        this.socket.off('drain', onDrain);
        const i = this.closeWaiters.indexOf(onClose);
        if (i >= 0) this.closeWaiters.splice(i, 1);
      };
      this.socket.on('drain', onDrain);
      this.closeWaiters.push(onClose);
    });
  }

  /** Sends a last frame (if any) and ends the connection. */
  end(frame?: Buffer): void {
    if (this.socket.destroyed) return;
    if (frame) this.socket.end(frame);
    else this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
