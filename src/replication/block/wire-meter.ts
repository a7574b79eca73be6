// Counts a block session's bytes on the wire into the pass's stats: both
// directions (the manifest the receiver sends is part of the cost of a
// pass), the handshake included, added as they accrue on the channel.
//
// Must not touch: the channel's traffic (it only reads its counters).

import type { FrameChannel } from '../../protocol/channel.js';
import type { BlockStats } from './progress.js';

export class WireMeter {
  private counted = 0;
  private readonly channel: FrameChannel;
  private readonly stats: BlockStats;

  constructor(channel: FrameChannel, stats: BlockStats) {
    this.channel = channel;
    this.stats = stats;
  }

  count(): void {
    const now = this.channel.bytesWritten + this.channel.bytesRead;
    this.stats.bytesOnWire += now - this.counted;
    this.counted = now;
  }
}
