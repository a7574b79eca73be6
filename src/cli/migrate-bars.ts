// The bars `ferry migrate` draws on a terminal (stderr): per volume a live
// bar with percent, bytes done and total, wire rate and ETA (BarFigures of
// cli/migrate-progress.ts), drawn by cli-progress, and the step lines above
// them. Owns the drawing only.
//
// A file of its own so that cli-progress (16 CommonJS modules, 37–73 ms to
// load on the 2-core VM) is loaded only when bars are drawn: a pass run by a
// script or the bench (no terminal, or --progress-json) does not pay for it
// at start-up (issue 14). A dynamic import, not createRequire: the single
// executable's bundler (packaging/sea/build-sea.mjs) follows imports only.

import cliProgress from 'cli-progress';
import { BarFigures, type ProgressView } from './migrate-progress.js';

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
