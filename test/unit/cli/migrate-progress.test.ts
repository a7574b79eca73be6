// What `ferry migrate` shows while it runs: per volume a bar with percent,
// bytes done and total, wire rate and ETA (figures from the pass's own
// counters), step lines above the bars, and JSON lines with --progress-json.

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BarFigures, jsonLinesView } from '../../../src/cli/migrate-progress.js';
import { terminalView } from '../../../src/cli/migrate-bars.js';
import { formatDuration } from '../../../src/platform/human-units.js';
import type { VolumeProgress } from '../../../src/replication/types.js';

const MiB = 1024 * 1024;

function snap(p: Partial<VolumeProgress>): VolumeProgress {
  return { volume: 'm.disk0p3', kind: 'file', pass: 'full', totalBytes: 100 * MiB, doneBytes: 0, payloadBytes: 0, wireBytes: 0, phase: 'sending', ...p };
}

describe('BarFigures', () => {
  it('wire rate from the wire bytes, ETA from where the sender is', () => {
    const f = new BarFigures();
    f.update(snap({ doneBytes: 0, sentBytes: 0, wireBytes: 0 }), 0);
    f.update(snap({ doneBytes: 10 * MiB, sentBytes: 20 * MiB, wireBytes: 10 * MiB }), 2000);
    const r = f.update(snap({ doneBytes: 30 * MiB, sentBytes: 40 * MiB, wireBytes: 20 * MiB }), 4000);
    expect(r.percent).toBe('30.0');
    expect(r.done).toBe('30.0 MiB');
    expect(r.total).toBe('100.0 MiB');
    expect(r.rate).toBe('5.0 MiB/s'); // 20 MiB of wire in 4 s
    expect(r.eta).toBe('6s'); // 60 MiB left to send at 10 MiB/s
  });

  it('no rate before two samples, and 100% with ETA 0 when done', () => {
    const f = new BarFigures();
    expect(f.update(snap({ doneBytes: 1 }), 0)).toMatchObject({ rate: '-', eta: '-' });
    expect(f.update(snap({ doneBytes: 100 * MiB, phase: 'done' }), 1000)).toMatchObject({ percent: '100.0', eta: '0s' });
    expect(new BarFigures().update(snap({ totalBytes: 0, phase: 'done' }), 0).percent).toBe('100.0');
  });

  it('durations read as a person says them', () => {
    expect([formatDuration(42), formatDuration(125), formatDuration(7300)]).toEqual(['42s', '2m05s', '2h01m']);
  });
});

describe('terminalView', () => {
  it('draws a bar per volume with the figures, and the steps above', () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 200 }) as unknown as NodeJS.WriteStream;
    let out = '';
    (stream as unknown as PassThrough).on('data', (b: Buffer) => (out += b.toString()));
    const view = terminalView(stream);
    view.step({ step: 'layout', state: 'done', detail: 'created: 2 disks' });
    view.step({ step: 'copy', state: 'start', detail: '2 volumes' });
    view.progress({ ...snap({ doneBytes: 25 * MiB, wireBytes: 5 * MiB }), volumeId: 'disk0p3', volumeIndex: 0, volumeCount: 2 });
    view.progress({ ...snap({ doneBytes: 50 * MiB, wireBytes: 9 * MiB }), volumeId: 'disk0p3', volumeIndex: 0, volumeCount: 2 });
    view.progress({ ...snap({ volume: 'm.disk1p1', kind: 'block', totalBytes: 8 * MiB, doneBytes: 4 * MiB }), volumeId: 'disk1p1', volumeIndex: 1, volumeCount: 2 });
    // The last snapshot of a pass may carry no totals: the bar keeps the ones it had, full.
    view.progress({ ...snap({ volume: 'm.disk1p1', kind: 'block', totalBytes: 0, doneBytes: 0, phase: 'done' }), volumeId: 'disk1p1', volumeIndex: 1, volumeCount: 2 });
    view.stop();
    view.stop();
    const text = out.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
    expect(text).toContain('layout done: created: 2 disks');
    expect(text).toContain('copy: 2 volumes …');
    expect(text).toMatch(/disk0p3 +\|[█░]+\|  50\.0%  50\.0 MiB \/ 100\.0 MiB  wire \S+ ?\S*  ETA \S+  sending/);
    expect(text).toMatch(/disk1p1 +\|█+\| 100\.0%  8\.0 MiB \/ 8\.0 MiB  wire - +ETA 0s  done/);
  });
});

describe('jsonLinesView', () => {
  it('one JSON object per line, steps and progress told apart by type', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (b: Buffer) => (text += b.toString()));
    const view = jsonLinesView(out);
    view.step({ step: 'copy', state: 'start', volume: { id: 'disk0p3', index: 0, count: 1 } });
    view.progress({ ...snap({ doneBytes: 3 }), volumeId: 'disk0p3', volumeIndex: 0, volumeCount: 1 });
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.type)).toEqual(['step', 'progress']);
    expect(lines[0]).toMatchObject({ step: 'copy', state: 'start', volume: { id: 'disk0p3' } });
    expect(lines[1]).toMatchObject({ volumeId: 'disk0p3', doneBytes: 3, totalBytes: 100 * MiB });
  });
});
