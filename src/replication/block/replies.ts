// What the receiver says during a block session: MANIFEST ranges (to the
// cursor), ACKs (the committed frames leave the window and count as done),
// NACKs (a refused frame is queued for resending, or the session fails when
// it was refused too often or cannot be rebuilt), DONE (the end-of-pass
// answer) and ERROR. Anything else, or a connection that closes, fails the
// session.
//
// Must not touch: sending (sender.ts), what happens after DONE (pass.ts).

import { FerryError, receivedCode } from '../../errors/ferry-error.js';
import type { Logger } from '../../platform/log.js';
import type { FrameChannel } from '../../protocol/channel.js';
import { AckSchema, DoneSchema, FrameType, NackSchema, decodeJson, decodeManifestFrame, frameTypeName, type Done, type RawFrame } from '../../protocol/frames.js';
import { errorFromFrame } from '../session/connect.js';
import type { CommitPacer } from '../session/commit-pacer.js';
import type { SessionWaits } from '../session/waits.js';
import type { InFlight } from './in-flight.js';
import type { ManifestCursor } from './manifest-cursor.js';
import type { BlockProgress, BlockStats } from './progress.js';

/** A frame refused more often than this fails the session (the receiver's code is kept). */
const MAX_NACKS_PER_FRAME = 3;

export interface RepliesParts {
  cursor: ManifestCursor;
  inFlight: InFlight;
  pacer: CommitPacer;
  waits: SessionWaits;
  stats: BlockStats;
  progress: BlockProgress;
  log: Logger;
  /** The receiver acknowledged a commit (the pass made progress). */
  onAck: () => void;
}

export class BlockReplies {
  /** The receiver's end-of-pass answer, once it came. */
  done: Done | undefined;
  private readonly p: RepliesParts;

  constructor(channel: FrameChannel, parts: RepliesParts) {
    this.p = parts;
    channel.onFrame((frame) => {
      try {
        this.handle(frame);
      } catch (e) {
        parts.waits.fail(e as Error);
      }
      parts.waits.wake();
    });
    void channel.whenClosed().then((e) => {
      parts.waits.fail(e);
    });
  }

  private handle(frame: RawFrame): void {
    const { type, body } = frame;
    const { waits } = this.p;
    switch (type) {
      case FrameType.MANIFEST: {
        const m = decodeManifestFrame(body);
        this.p.cursor.deliver(m.first, m.hashes);
        break;
      }
      case FrameType.ACK: {
        const ack = decodeJson(AckSchema, type, body);
        this.p.stats.doneBytes += this.p.inFlight.acknowledge(ack.id);
        this.p.pacer.acknowledged();
        this.p.onAck();
        this.p.progress.emit();
        break;
      }
      case FrameType.NACK: {
        const nack = decodeJson(NackSchema, type, body);
        const s = this.p.inFlight.refuse(nack.seq);
        if (!s) break;
        this.p.log.warn({ seq: nack.seq, code: nack.code, attempt: s.nacks }, `receiver refused a frame: ${nack.message}`);
        if (s.nacks > MAX_NACKS_PER_FRAME) {
          waits.fail(new FerryError(receivedCode(nack.code), `receiver refused the same frame ${s.nacks} times: ${nack.message}`, { recovery: 'fatal' }));
          break;
        }
        if (!s.hashes) {
          waits.fail(new FerryError(receivedCode(nack.code), `receiver refused a ZERO frame: ${nack.message}`, { recovery: 'fatal' }));
          break;
        }
        this.p.inFlight.resend.push(s);
        break;
      }
      case FrameType.DONE:
        this.done = decodeJson(DoneSchema, type, body);
        break;
      case FrameType.ERROR:
        waits.fail(errorFromFrame(frame));
        break;
      default:
        throw new FerryError('FERRY_FRAME_UNKNOWN', `unexpected ${frameTypeName(type)} frame from the receiver`);
    }
  }
}
