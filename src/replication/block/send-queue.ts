// What the scanner hands the sender, in volume order, through a short
// bounded queue: DATA runs (being compressed while they wait), ZERO runs,
// and marks (a point up to which the volume is accounted for; the final one
// ends the scan). The bound keeps memory and read-ahead in check.
//
// Must not touch: how items are made (scanner.ts) or sent (sender.ts).

import type { CodecValue } from '../../protocol/frames.js';
import type { SessionWaits } from '../session/waits.js';
import type { SourceRead } from './source-reader.js';

/** Frames being compressed or waiting to be sent, at most. */
export const QUEUE_ITEMS = 3;

export type Item =
  | {
      kind: 'data';
      offset: number;
      rawLength: number;
      hashes: bigint[];
      /** The volume is accounted for up to here once this is sent. */
      frontier: number;
      /** The read buffer the raw run points into (retained until the frame is flushed). */
      read: SourceRead;
      encoded: Promise<{ codec: CodecValue; payload: Buffer }>;
      /** Set once `encoded` has settled: the sender did not wait for compression. */
      ready: boolean;
    }
  | { kind: 'zero'; offset: number; length: number; frontier: number }
  | { kind: 'mark'; frontier: number; final: boolean };

export class SendQueue {
  private readonly items: Item[] = [];
  private readonly waits: SessionWaits;
  private readonly idleTimeoutMs: number;
  private readonly hasRoom = (): boolean => this.items.length < QUEUE_ITEMS || this.waits.error !== undefined;

  constructor(waits: SessionWaits, idleTimeoutMs: number) {
    this.waits = waits;
    this.idleTimeoutMs = idleTimeoutMs;
  }

  get length(): number {
    return this.items.length;
  }

  /** Adds an item once there is room (throws if the session fails first). */
  async push(item: Item): Promise<void> {
    await this.waits.until(this.hasRoom, 'queue space', this.idleTimeoutMs);
    this.items.push(item);
    this.waits.wake();
  }

  /** The next item, if any (room for the scanner again). */
  shift(): Item | undefined {
    const item = this.items.shift();
    if (item) this.waits.wake();
    return item;
  }
}
