// The block sender's frames on the wire: numbered as they go out, held
// until a COMMIT that covers them is acknowledged (then they count as done),
// or taken back when the receiver refuses one (NACK) so that it can be
// resent. Payloads are not kept (the window costs no memory): a refused
// DATA frame is rebuilt from the source, and must hash as before.
//
// Must not touch: the channel, the source, the decision to fail on a NACK
// (replies.ts), when to commit (sender.ts).

import { FerryError } from '../../errors/ferry-error.js';
import { UnackedWindow } from '../session/window.js';

/** A frame on the wire, not yet acknowledged. */
export interface Sent {
  seq: number;
  /** Frame bytes (what the window counts). */
  bytes: number;
  /** Volume bytes it covers. */
  raw: number;
  /** Times the receiver refused it. */
  nacks: number;
  offset: number;
  /** DATA: the chunk hashes it carried; ZERO: undefined. */
  hashes?: bigint[];
}

export class InFlight {
  readonly window: UnackedWindow;
  /** Refused DATA frames, to be rebuilt and sent again. */
  readonly resend: Sent[] = [];
  /** The highest commit id the receiver acknowledged. */
  lastAckedCommit = 0;
  private nextSeq = 1;
  private nextCommit = 1;
  private readonly unacked = new Map<number, Sent>();
  /** Commit id → the last seq it covers. */
  private readonly commitMarks = new Map<number, number>();

  constructor(windowBytes: number) {
    this.window = new UnackedWindow(windowBytes);
  }

  /** Frames sent and neither acknowledged nor refused. */
  get size(): number {
    return this.unacked.size;
  }

  /** Volume bytes sent and not yet acknowledged. */
  rawBytes(): number {
    let n = 0;
    for (const x of this.unacked.values()) n += x.raw;
    return n;
  }

  /** Records a frame going out; returns its seq. */
  add(bytes: number, raw: number, nacks: number, offset: number, hashes: bigint[] | undefined): number {
    const seq = this.nextSeq++;
    this.unacked.set(seq, { seq, bytes, raw, nacks, offset, hashes });
    this.window.add(bytes);
    return seq;
  }

  /** A new commit id, covering every frame sent so far. */
  commit(): number {
    const id = this.nextCommit++;
    this.commitMarks.set(id, this.nextSeq - 1);
    return id;
  }

  /** The receiver acknowledged commit `id`: the frames it covers leave the window. Returns the volume bytes they covered. */
  acknowledge(id: number): number {
    const mark = this.commitMarks.get(id);
    if (mark === undefined) throw new FerryError('FERRY_FRAME_MALFORMED', `ACK for unknown commit ${id}`);
    this.commitMarks.delete(id);
    let raw = 0;
    for (const [seq, s] of this.unacked) {
      if (seq > mark) break;
      this.unacked.delete(seq);
      this.window.remove(s.bytes);
      raw += s.raw;
    }
    this.lastAckedCommit = Math.max(this.lastAckedCommit, id);
    return raw;
  }

  /** The receiver refused frame `seq`: it leaves the window, counted as refused once more. Undefined if it is not in flight. */
  refuse(seq: number): Sent | undefined {
    const s = this.unacked.get(seq);
    if (!s) return undefined;
    this.unacked.delete(seq);
    this.window.remove(s.bytes);
    s.nacks += 1;
    return s;
  }
}
