// A frame channel over one socket: writes frames with back-pressure (a write
// waits for 'drain' once the socket buffer is full) and hands each decoded
// incoming frame to a handler, in order. Both the agent's session and the
// receiver use it; it knows frame boundaries, not frame meanings.

import type { Socket } from 'node:net';
import { FerryError } from '../../errors.js';
import { FrameDecoder, MAX_FRAME_BYTES, type RawFrame } from './frames.js';

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

  constructor(socket: Socket, options: { maxFrameBytes?: number; onDecodeError: (e: Error) => void }) {
    this.socket = socket;
    this.decoder = new FrameDecoder(options.maxFrameBytes ?? MAX_FRAME_BYTES);
    socket.on('data', (data: Buffer) => {
      if (this.closedError) return;
      this.bytesRead += data.length;
      let frames: RawFrame[];
      try {
        frames = this.decoder.push(data);
      } catch (e) {
        socket.pause();
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

  /** Writes one encoded frame (or its parts, back to back); resolves once the socket can take more. */
  async send(frame: Buffer | Buffer[]): Promise<void> {
    if (this.closedError) throw this.closedError;
    let ok: boolean;
    if (Array.isArray(frame)) {
      this.socket.cork();
      ok = true;
      for (const part of frame) {
        this.bytesWritten += part.length;
        ok = this.socket.write(part);
      }
      this.socket.uncork();
    } else {
      this.bytesWritten += frame.length;
      ok = this.socket.write(frame);
    }
    if (ok) return;
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
