// The agent's view of the receiver's manifest: fetched range by range as the
// scan advances (one range ahead), so memory stays bounded whatever the
// volume size. Entries are canonical chunk hashes (0 zero, 1 unknown).

import { FerryError } from '../../errors/ferry-error.js';
import { FrameType, encodeJsonFrame } from '../../protocol/frames.js';
import type { FrameChannel } from '../../protocol/channel.js';

export const MANIFEST_RANGE_CHUNKS = 64 * 1024;

interface Range {
  first: number;
  entries: Promise<Buffer>;
}

export class ManifestCursor {
  private readonly channel: FrameChannel;
  private readonly chunkCount: number;
  private readonly waiting = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private current: Range | undefined;
  private currentEntries: Buffer | undefined;
  private ahead: Range | undefined;

  constructor(channel: FrameChannel, chunkCount: number) {
    this.channel = channel;
    this.chunkCount = chunkCount;
  }

  /** Feed a MANIFEST frame's content. */
  deliver(first: number, entries: Buffer): void {
    const w = this.waiting.get(first);
    if (!w) return;
    this.waiting.delete(first);
    w.resolve(entries);
  }

  failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  private request(first: number): Range | undefined {
    if (first >= this.chunkCount) return undefined;
    const count = Math.min(MANIFEST_RANGE_CHUNKS, this.chunkCount - first);
    const entries = new Promise<Buffer>((resolve, reject) => this.waiting.set(first, { resolve, reject }));
    entries.catch(() => {});
    void this.channel.send(encodeJsonFrame(FrameType.MANIFEST_REQUEST, { first, count })).catch((e: Error) => this.failAll(e));
    return { first, entries };
  }

  /**
   * The entries of chunks [k, k + count), as `locate` finds them (and so moving the cursor as it does: callers go
   * forward through the volume); undefined when they cross the end of a range or of the volume.
   */
  async slice(k: number, count: number): Promise<Buffer | undefined> {
    if ((k % MANIFEST_RANGE_CHUNKS) + count > MANIFEST_RANGE_CHUNKS || k + count > this.chunkCount) return undefined;
    const { entries, index } = await this.locate(k);
    return entries.length < (index + count) * 8 ? undefined : entries.subarray(index * 8, (index + count) * 8);
  }

  /** The raw 8-byte entries of the range holding chunk k, and k's index in it. */
  async locate(k: number): Promise<{ entries: Buffer; index: number }> {
    const rangeFirst = k - (k % MANIFEST_RANGE_CHUNKS);
    if (!this.current || this.current.first !== rangeFirst) {
      if (this.ahead && this.ahead.first === rangeFirst) this.current = this.ahead;
      else this.current = this.request(rangeFirst);
      this.ahead = this.request(rangeFirst + MANIFEST_RANGE_CHUNKS);
      this.currentEntries = undefined;
      if (!this.current) throw new FerryError('FERRY_INTERNAL', `chunk ${k} is past the volume`);
    }
    this.currentEntries ??= await this.current.entries;
    const index = k - rangeFirst;
    if (this.currentEntries.length < (index + 1) * 8) throw new FerryError('FERRY_FRAME_MALFORMED', `receiver manifest range at ${rangeFirst} is short`);
    return { entries: this.currentEntries, index };
  }
}
