// What a block pass counts and reports: the pass's byte counters (kept
// across the sessions of one pass) and the progress snapshots a session
// emits to the caller's listener, throttled.
//
// Must not touch: the wire, the source (the session's parts update the counters).

import type { PassOptions, VolumeProgress } from '../types.js';
import { ProgressTicker } from '../session/progress-ticker.js';

/** Counters over every session of one pass. */
export interface BlockStats {
  bytesRead: number;
  bytesOnWire: number;
  payloadBytes: number;
  bytesSkippedZero: number;
  bytesSkippedUnchanged: number;
  /** Volume bytes accounted for: acknowledged, zero, or unchanged. */
  doneBytes: number;
  dataFrames: number;
}

export function newBlockStats(): BlockStats {
  return { bytesRead: 0, bytesOnWire: 0, payloadBytes: 0, bytesSkippedZero: 0, bytesSkippedUnchanged: 0, doneBytes: 0, dataFrames: 0 };
}

/** One session's progress reports. */
export class BlockProgress {
  phase: VolumeProgress['phase'] = 'connecting';
  pass: 'full' | 'delta' = 'full';
  /** Volume bytes sent and not yet acknowledged (0 until the session has a window). */
  inFlightRaw: () => number = () => 0;
  private readonly ticker = new ProgressTicker();
  private readonly volume: string;
  private readonly size: number;
  private readonly stats: BlockStats;
  private readonly listener: PassOptions['onProgress'];

  constructor(volume: string, size: number, stats: BlockStats, listener: PassOptions['onProgress']) {
    this.volume = volume;
    this.size = size;
    this.stats = stats;
    this.listener = listener;
  }

  /** Reports, at most every PROGRESS_EVERY_MS unless forced. */
  emit(force = false): void {
    if (!this.listener || !this.ticker.due(force)) return;
    const { size, stats } = this;
    this.listener({
      volume: this.volume,
      kind: 'block',
      pass: this.pass,
      totalBytes: size,
      doneBytes: Math.min(size, stats.doneBytes),
      sentBytes: Math.min(size, stats.doneBytes + this.inFlightRaw()),
      payloadBytes: stats.payloadBytes,
      wireBytes: stats.bytesOnWire,
      phase: this.phase,
    });
  }
}
