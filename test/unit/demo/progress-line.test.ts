// The demo's progress line and the way it shows children's log lines.
import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, formatProgress, snapshot } from '../../../src/demo/progress-line.js';
import { readable, scrub } from '../../../src/demo/child.js';

describe('demo progress line', () => {
  const task = (over: Record<string, unknown>) => ({ id: 't', state: 'RUNNING', sub_tasks: [], ...over }) as never;

  it('shows state, percent, bytes, speed, ETA and subtask from the task view and the source summary', () => {
    const s = snapshot(
      task({ migrate_speed: 123.45, remain_seconds: 75, sub_tasks: [{ name: 'MIGRATE_LINUX_BLOCK', progress: 40, start_date: 1, end_date: null }] }),
      { replicatesize: 512 * 1024 * 1024, totalsize: 1024 * 1024 * 1024 } as never,
    );
    expect(formatProgress(s)).toBe('RUNNING           50.0%  512.0 MiB / 1.0 GiB  123.5 Mbit/s  ETA 1m15s  MIGRATE_LINUX_BLOCK');
  });

  it('counts only the current pass when earlier passes are in the sums', () => {
    const s = snapshot(task({ state: 'SYNCING' }), { replicatesize: 150, totalsize: 200 } as never, { done: 100, total: 100 });
    expect([s.doneBytes, s.totalBytes, s.percent]).toEqual([50, 100, 50]);
  });

  it('leaves out what the control plane does not know yet', () => {
    expect(formatProgress(snapshot(task({}), undefined))).toBe('RUNNING            0.0%  - Mbit/s  ETA -');
  });

  it('formats sizes and durations', () => {
    expect([formatBytes(0), formatBytes(1536), formatBytes(3 * 1024 ** 4)]).toEqual(['0 B', '1.5 KiB', '3.0 TiB']);
    expect([formatDuration(0), formatDuration(59.6), formatDuration(3599), formatDuration(7260)]).toEqual(['0s', '1m00s', '59m59s', '2h01m']);
  });
});

describe('demo child log lines', () => {
  it('shows pino lines as time, level, message and fields, with secrets scrubbed', () => {
    const line = JSON.stringify({ level: 40, time: '2026-11-25T13:36:40.248Z', pid: 1, name: 'ferry-agent', taskId: 'x', msg: 'token tok-SECRET rejected' });
    expect(scrub(readable(line), ['tok-SECRET'])).toBe('13:36:40 WARN token *** rejected  taskId=x');
    expect(readable('plain text')).toBe('plain text');
  });
});
