// What `ferry migrate` shows while it works. On a terminal: the steps as
// lines (layout, each volume, configure) and, per volume, a live bar with
// percent, bytes done and total, wire rate and ETA, drawn by cli-progress
// (the bars stay on screen when done). With --progress-json: one JSON line
// per step event and per progress snapshot on stdout. Otherwise nothing:
// the caller prints the summary. Loaded only by `ferry migrate`'s action.
// Owns the presentation only; the numbers come from the passes' progress
// events (replication/types.ts VolumeProgress).

import cliProgress from 'cli-progress';
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

/** Bars on a terminal (stderr). `limit` names the speed limit in force, if any. */
export function terminalView(stream: NodeJS.WriteStream, limit?: () => string | undefined): ProgressView {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: '{name} |{bar}| {percent}%  {done} / {size}  wire {rate}  ETA {eta2}  {phase}{limit}',
      barsize: 28,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      fps: 5,
      // ferry stops the bars itself on SIGINT/SIGTERM (the pass is aborted first).
      gracefulExit: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, { bar: cliProgress.SingleBar; figures: BarFigures; total: number }>();
  let width = 8;
  let stopped = false;
  // Before the first bar and after the last frame, lines go straight to the
  // terminal; in between through the bars' log, drawn above them.
  const line = (s: string) => (bars.size > 0 && !stopped ? multi.log(`${s}\n`) : stream.write(`${s}\n`));
  return {
    step(e) {
      if (e.volume) {
        if (e.state === 'start') line(`[${e.volume.index + 1}/${e.volume.count}] ${e.detail ?? e.volume.id}`);
        else if (e.state === 'failed') line(`[${e.volume.index + 1}/${e.volume.count}] ${e.volume.id} failed: ${e.detail ?? ''}`);
        return;
      }
      if (e.state === 'start') line(`${e.step}${e.detail ? `: ${e.detail}` : ''} …`);
      else line(`${e.step} ${e.state === 'done' ? 'done' : 'FAILED'}${e.detail ? `: ${e.detail}` : ''}`);
    },
    progress(raw) {
      const key = raw.volumeId ?? raw.volume;
      const b = bars.get(key);
      // A pass's last snapshot may carry no totals (a file pass that is done): the bar keeps the last it had.
      const p = raw.phase === 'done' && raw.totalBytes === 0 && b && b.total > 0 ? { ...raw, totalBytes: b.total, doneBytes: b.total } : raw;
      width = Math.max(width, Math.min(32, key.length));
      const figures = b?.figures ?? new BarFigures();
      const f = figures.update(p, Date.now());
      const payload = { name: key.padEnd(width).slice(0, width), percent: f.percent.padStart(5), done: f.done, size: f.total, rate: f.rate, eta2: f.eta, phase: p.phase, limit: limit?.() ? `  limit ${limit()}` : '' };
      const total = Math.max(1, p.totalBytes);
      const value = p.totalBytes > 0 ? Math.min(p.doneBytes, p.totalBytes) : p.phase === 'done' ? 1 : 0;
      if (!b) {
        bars.set(key, { bar: multi.create(total, value, payload), figures, total: p.totalBytes });
        return;
      }
      b.total = p.totalBytes;
      b.bar.setTotal(total);
      b.bar.update(value, payload);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (bars.size === 0) return;
      multi.update(); // draws the lines logged since the last frame
      multi.stop();
    },
  };
}
