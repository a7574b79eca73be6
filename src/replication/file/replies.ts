// What the receiver says during a file session: FILE_ACKs (the stream is
// durable up to an offset: those bytes leave the window), FILE_HASHES
// (answers to the producer's requests for a large file's piece hashes),
// FILE_DONE (the end-of-pass answer) and ERROR. Anything else, or a
// connection that closes, fails the session.
//
// Must not touch: sending (stream-sender.ts), the manifest, what happens
// after FILE_DONE (pass.ts).

import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import type { FrameChannel } from '../../protocol/channel.js';
import { FrameType, decodeJson, encodeJsonFrame, type RawFrame } from '../../protocol/frames.js';
import { FileAckSchema, FileDoneSchema, FileFrameType, decodeFileHashes, type FileDone } from '../../protocol/file-frames.js';
import { errorFromFrame } from '../session/connect.js';
import type { SessionWaits } from '../session/waits.js';
import type { UnackedWindow } from '../session/window.js';

export class FileReplies {
  /** The receiver's end-of-pass answer, once it came. */
  done: FileDone | undefined;
  /** The stream offset up to which the receiver acknowledged. */
  private acked = 0;
  private readonly hashWaiters = new Map<number, (h: Buffer | null) => void>();
  private nextHashId = 0;
  private readonly waits: SessionWaits;

  /** `totals.bytesOnWire` counts what the receiver sends; `onAck` hears of progress. */
  constructor(channel: FrameChannel, waits: SessionWaits, window: UnackedWindow, totals: { bytesOnWire: number }, onAck: () => void) {
    this.waits = waits;
    waits.onFailure(() => this.failRequests());
    channel.onFrame((f: RawFrame) => {
      totals.bytesOnWire += f.body.length + 5;
      try {
        if (f.type === FileFrameType.FILE_ACK) {
          const a = decodeJson(FileAckSchema, f.type, f.body);
          if (a.offset > this.acked) {
            window.remove(a.offset - this.acked);
            this.acked = a.offset;
          }
          onAck();
          waits.wake();
        } else if (f.type === FileFrameType.FILE_HASHES) {
          const h = decodeFileHashes(f.body);
          this.hashWaiters.get(h.id)?.(h.hashes);
          this.hashWaiters.delete(h.id);
        } else if (f.type === FileFrameType.FILE_DONE) {
          this.done = decodeJson(FileDoneSchema, f.type, f.body);
          waits.wake();
        } else if (f.type === FrameType.ERROR) {
          waits.fail(errorFromFrame(f));
        } else {
          waits.fail(new FerryError('FERRY_FRAME_UNEXPECTED', `unexpected frame 0x${f.type.toString(16)} from the receiver`));
        }
      } catch (e) {
        waits.fail(e as Error);
      }
    });
    void channel.whenClosed().then((e) => waits.fail(e instanceof FerryError ? e : new FerryError('SMS.0807', errorMessage(e))));
  }

  /** Ends every pending hash request with the session's error. */
  private failRequests(): void {
    for (const w of this.hashWaiters.values()) w(null);
  }

  /** Asks the receiver for the piece hashes it holds of `path` (null: it holds none). */
  requestHashes(path: Buffer, send: (frame: Buffer) => Promise<void>): Promise<Buffer | null> {
    const failure = this.waits.error;
    if (failure) return Promise.reject(failure);
    const id = this.nextHashId++;
    return new Promise((resolve, reject) => {
      this.hashWaiters.set(id, (h) => (this.waits.error ? reject(this.waits.error) : resolve(h)));
      send(encodeJsonFrame(FileFrameType.FILE_HASH_REQUEST, { id, path: path.toString('base64') })).catch(reject);
    });
  }
}
