// What `ferry migrate` shows while it works. On a terminal: the steps as
// lines (layout, each volume, configure) and, per volume, a live bar with
// percent, bytes done and total, wire rate and ETA, drawn by cli-progress
// (the bars stay on screen when done; cli/migrate-bars.ts, loaded only then).
// With --progress-json: one JSON line
// per step event and per progress snapshot on stdout. Otherwise nothing:
// the caller prints the summary. Loaded only by `ferry migrate`'s action.
// Owns the presentation only; the numbers come from the passes' progress
// events (replication/types.ts VolumeProgress).

import { formatBytes, formatDuration } from '../platform/human-units.js';
import { RateMeter } from '../replication/progress/rate-meter.js';
import type { VolumeProgress } from '../replication/types.js';

/** A step of the migration, as the whole-server flow reports it (single volumes use 'copy' only). */
export interface StepEvent {
  step: string;
  state: 'start' | 'done' | 'failed';
  detail?: string;
  volume?: { id: string; index: number; count: number };
}

export type ProgressEvent = VolumeProgress & { volumeId?: string; volumeIndex?: number; volumeCount?: number };

export interface ProgressView {
  step(e: StepEvent): void;
  progress(p: ProgressEvent): void;
  /** Draws the last frame and gives the terminal back (cursor, line wrapping). */
  stop(): void;
}

export const silentView: ProgressView = { step() {}, progress() {}, stop() {} };

/** JSON lines on `out`: {"type":"step",…} and {"type":"progress",…}, one object per line. */
export function jsonLinesView(out: NodeJS.WritableStream): ProgressView {
  return {
    step: (e) => out.write(`${JSON.stringify({ type: 'step', time: new Date().toISOString(), ...e })}\n`),
    progress: (p) => out.write(`${JSON.stringify({ type: 'progress', time: new Date().toISOString(), ...p })}\n`),
    stop() {},
  };
}

const MIN_SPAN_MS = 1000;

/** The numbers a bar shows, from the pass's own counters (kept per volume). */
export class BarFigures {
  /** Wire bytes over the last 10 s: the rate shown. */
  private readonly wire = new RateMeter(10_000);
  /** Where the sender is (sent, acknowledged or not) over the last 30 s: the ETA's rate. */
  private readonly sent = new RateMeter(30_000);

  update(p: VolumeProgress, now: number): { percent: string; done: string; total: string; rate: string; eta: string } {
    this.wire.add(now, p.wireBytes);
    const at = p.sentBytes ?? p.doneBytes;
    this.sent.add(now, at);
    // A rate over less than a second of samples says little (the first two
    // snapshots of a pass can be a millisecond apart): shown as '-' until then.
    const wireRate = this.wire.span() >= MIN_SPAN_MS ? this.wire.rate() : null;
    const sendRate = this.sent.span() >= MIN_SPAN_MS ? this.sent.slope() : null;
    const left = Math.max(0, p.totalBytes - at);
    const finished = p.phase === 'done' || (p.totalBytes > 0 && p.doneBytes >= p.totalBytes);
    let eta = '-';
    if (finished) eta = '0s';
    else if (sendRate !== null && sendRate > 0) eta = formatDuration(left / sendRate);
    return {
      percent: p.totalBytes > 0 ? ((100 * Math.min(p.doneBytes, p.totalBytes)) / p.totalBytes).toFixed(1) : finished ? '100.0' : '0.0',
      done: formatBytes(p.doneBytes),
      total: formatBytes(p.totalBytes),
      rate: wireRate === null ? '-' : `${formatBytes(Math.max(0, Math.round(wireRate)))}/s`,
      eta,
    };
  }
}
