// Progress aggregation into the table 4-172 body: names, monotonic
// progress, sizes that add up, speed and ETA from recent rates.
import { describe, expect, it } from 'vitest';
import { progressReportSchema } from '../../../src/sms/schemas/progress.js';
import { ProgressAggregator } from '../../../src/replication/progress/aggregator.js';
import { subtaskName } from '../../../src/replication/progress/subtask-name.js';
import { FakeClock } from '../../../src/replication/throttle/clock.js';
import type { VolumeProgress } from '../../../src/replication/types.js';

const MiB = 1024 * 1024;

function vp(volume: string, over: Partial<VolumeProgress>): VolumeProgress {
  return { volume, kind: 'block', pass: 'full', totalBytes: 100 * MiB, doneBytes: 0, payloadBytes: 0, wireBytes: 0, phase: 'sending', ...over };
}

describe('subtaskName', () => {
  it('maps OS, level and pass to the table 4-172 names', () => {
    expect(subtaskName('LINUX', 'block', 'full')).toBe('MIGRATE_LINUX_BLOCK');
    expect(subtaskName('LINUX', 'block', 'delta')).toBe('SYNC_LINUX_BLOCK');
    expect(subtaskName('LINUX', 'file', 'full')).toBe('MIGRATE_LINUX_FILE');
    expect(subtaskName('LINUX', 'file', 'delta')).toBe('SYNC_LINUX_FILE');
    expect(subtaskName('WINDOWS', 'block', 'full')).toBe('MIGRATE_WINDOWS_BLOCK');
    expect(subtaskName('WINDOWS', 'block', 'delta')).toBe('SYNC_WINDOWS_BLOCK');
  });
});

describe('ProgressAggregator', () => {
  it('adds up several volumes, counts planned ones before they start, and reaches 100 only when all are done', () => {
    const clock = new FakeClock(new Date(2026, 5, 15, 10, 0));
    const agg = new ProgressAggregator({ os: 'LINUX', now: () => clock.now(), plan: [{ volume: 'a', totalBytes: 100 * MiB }, { volume: 'b', totalBytes: 300 * MiB }] });
    expect(agg.report()).toBeNull();
    agg.update(vp('a', { doneBytes: 50 * MiB, wireBytes: 20 * MiB, payloadBytes: 40 * MiB }));
    let r = agg.report()!;
    expect(progressReportSchema.parse(r)).toEqual(r);
    expect(r).toMatchObject({ subtask_name: 'MIGRATE_LINUX_BLOCK', progress: 12, replicatesize: 50 * MiB, totalsize: 400 * MiB, compress_rate: 2 });
    expect(r.process_trace).toBe('a sending 50% 50/100 MiB; b waiting');
    expect(r.agent_time).toMatch(/^2026-06-15T10:00:00[+-]\d\d:\d\d$/);
    agg.update(vp('a', { doneBytes: 100 * MiB, phase: 'done' }));
    agg.update(vp('b', { totalBytes: 300 * MiB, doneBytes: 300 * MiB, phase: 'verifying' }));
    r = agg.report()!;
    expect(r.progress).toBe(99); // everything copied, but b is still verifying
    expect(r.replicatesize).toBe(400 * MiB);
    agg.update(vp('b', { totalBytes: 300 * MiB, doneBytes: 300 * MiB, phase: 'done' }));
    r = agg.report()!;
    expect(r).toMatchObject({ progress: 100, replicatesize: 400 * MiB, totalsize: 400 * MiB, remain_time: 0, process_trace: 'a done; b done' });
  });

  it('a planned volume of unknown size holds progress below 100 until it is done', () => {
    const clock = new FakeClock(0);
    const agg = new ProgressAggregator({ os: 'LINUX', now: () => clock.now(), plan: [{ volume: 'a' }, { volume: 'b' }] });
    agg.update(vp('a', { doneBytes: 100 * MiB, phase: 'done' }));
    expect(agg.report()).toMatchObject({ progress: 99, totalsize: 100 * MiB, process_trace: 'a done; b waiting' });
    agg.update(vp('b', { totalBytes: 100 * MiB, doneBytes: 60 * MiB }));
    expect(agg.report()).toMatchObject({ progress: 99, replicatesize: 160 * MiB, totalsize: 200 * MiB });
    agg.update(vp('b', { totalBytes: 100 * MiB, doneBytes: 100 * MiB, phase: 'done' }));
    expect(agg.report()!.progress).toBe(100);
  });

  it('zero and unchanged pieces count as done: a sparse volume moves fast with few wire bytes', () => {
    const clock = new FakeClock(0);
    const agg = new ProgressAggregator({ os: 'LINUX', now: () => clock.now() });
    agg.update(vp('0_1', { doneBytes: 90 * MiB, payloadBytes: MiB, wireBytes: MiB }));
    expect(agg.report()).toMatchObject({ progress: 90, replicatesize: 90 * MiB });
  });

  it('never goes backwards within a subtask, and starts again at a new one', () => {
    const clock = new FakeClock(0);
    const agg = new ProgressAggregator({ os: 'LINUX', now: () => clock.now() });
    const changes: string[] = [];
    agg.onSubtaskChange = (n) => changes.push(n);
    agg.update(vp('0_1', { doneBytes: 60 * MiB }));
    expect(agg.report()!.progress).toBe(60);
    // A second volume announces itself: the total grows, the fraction shrinks.
    agg.update(vp('0_2', { totalBytes: 900 * MiB, doneBytes: 0 }));
    expect(agg.report()!.progress).toBe(60);
    // A resumed pass reports less done than before: ignored.
    agg.update(vp('0_1', { doneBytes: 10 * MiB }));
    expect(agg.report()!.replicatesize).toBe(60 * MiB);
    // Mixed block and file volumes in the same pass are one subtask.
    agg.update(vp('root', { kind: 'file', totalBytes: 0 }));
    expect(changes).toEqual([]);
    // The delta pass that follows is a new subtask, from 0.
    agg.update(vp('0_1', { pass: 'delta', totalBytes: 100 * MiB, doneBytes: 5 * MiB }));
    expect(changes).toEqual(['SYNC_LINUX_BLOCK']);
    expect(agg.report()).toMatchObject({ subtask_name: 'SYNC_LINUX_BLOCK', progress: 5, totalsize: 100 * MiB });
    agg.startSubtask('SYNC_LINUX_BLOCK', [{ volume: '0_1', totalBytes: 100 * MiB }]);
    expect(changes).toEqual(['SYNC_LINUX_BLOCK', 'SYNC_LINUX_BLOCK']);
    expect(agg.report()).toMatchObject({ progress: 0, replicatesize: 0, totalsize: 100 * MiB });
  });

  it('migrate_speed is the wire rate of the last 10 s in Mbit/s; remain_time follows the recent rate', () => {
    const clock = new FakeClock(0);
    const agg = new ProgressAggregator({ os: 'LINUX', now: () => clock.now() });
    const total = 1000 * MiB;
    let done = 0;
    let wire = 0;
    // 60 s at 4 MiB/s done (2 MiB/s on the wire), then 10 MiB/s done (5 MiB/s wire).
    const run = (sec: number, doneRate: number) => {
      for (let i = 0; i < sec * 10; i++) {
        clock.advance(100);
        done += (doneRate * MiB) / 10;
        wire += (doneRate * MiB) / 20;
        agg.update(vp('d', { totalBytes: total, doneBytes: done, payloadBytes: done, wireBytes: wire }));
      }
    };
    run(60, 4);
    let r = agg.report()!;
    expect(r.migrate_speed).toBeCloseTo((2 * MiB * 8) / 1e6, 1);
    expect(r.remain_time).toBe(Math.round((total - done) / (4 * MiB)));
    expect(r.compress_rate).toBe(2);
    run(60, 10);
    r = agg.report()!;
    expect(r.migrate_speed).toBeCloseTo((5 * MiB * 8) / 1e6, 1);
    expect(r.remain_time).toBe(Math.round((total - done) / (10 * MiB)));
    // A stall: the speed falls to zero and no ETA is invented.
    clock.advance(31_000);
    r = agg.report()!;
    expect(r.migrate_speed).toBe(0);
    expect(r.remain_time).toBeUndefined();
  });

  it('the ETA ignores the time before the first byte was done', () => {
    const clock = new FakeClock(0);
    const agg = new ProgressAggregator({ os: 'LINUX', now: () => clock.now() });
    agg.update(vp('d', { phase: 'connecting' }));
    clock.advance(5_000); // connecting, manifest exchange
    agg.update(vp('d', { phase: 'sending' }));
    for (let s = 1; s <= 10; s++) {
      clock.advance(1_000);
      agg.update(vp('d', { doneBytes: s * 2 * MiB }));
    }
    // 20 of 100 MiB done at 2 MiB/s since the first byte: 40 s left.
    expect(agg.report()!.remain_time).toBe(40);
  });

  it('the ETA rate is not fooled by bytes done that move in steps (commit acknowledgements)', () => {
    const clock = new FakeClock(0);
    const agg = new ProgressAggregator({ os: 'LINUX', now: () => clock.now() });
    // True rate 2 MiB/s; acknowledgements land every 1.5 s, 3 MiB at a time; samples every 250 ms.
    const etas: number[] = [];
    for (let ms = 250; ms <= 40_000; ms += 250) {
      clock.advance(250);
      const done = Math.floor(ms / 1500) * 3 * MiB;
      agg.update(vp('d', { totalBytes: 200 * MiB, doneBytes: done }));
      if (ms >= 20_000 && ms % 1000 === 0) etas.push(agg.report()!.remain_time! / ((200 * MiB - done) / (2 * MiB)));
    }
    for (const r of etas) {
      expect(r).toBeGreaterThan(0.93);
      expect(r).toBeLessThan(1.07);
    }
  });

  it('counts the ETA from where the sender is when the engine says (sentBytes), the sizes from what is acknowledged', () => {
    const clock = new FakeClock(0);
    const agg = new ProgressAggregator({ os: 'LINUX', now: () => clock.now() });
    for (let s = 1; s <= 10; s++) {
      clock.advance(1_000);
      // 2 MiB/s sent; acknowledgements trail by 3 MiB.
      agg.update(vp('d', { doneBytes: Math.max(0, s * 2 - 3) * MiB, sentBytes: s * 2 * MiB }));
    }
    const r = agg.report()!;
    expect(r).toMatchObject({ replicatesize: 17 * MiB, progress: 17 });
    expect(r.remain_time).toBe(40); // (100 - 20) MiB at 2 MiB/s
  });

  it('reports Windows passes under the Windows names and keeps the trace under 2048 characters', () => {
    const clock = new FakeClock(0);
    const agg = new ProgressAggregator({ os: 'WINDOWS', now: () => clock.now() });
    for (let i = 0; i < 200; i++) agg.update(vp(`volume-with-a-long-name-${i}`, { doneBytes: i * MiB }));
    const r = agg.report()!;
    expect(r.subtask_name).toBe('MIGRATE_WINDOWS_BLOCK');
    expect(r.process_trace.length).toBeLessThanOrEqual(2048);
    expect(progressReportSchema.safeParse(r).success).toBe(true);
  });

  it('adds host and agent figures, clamped to the documented ranges', () => {
    const clock = new FakeClock(0);
    const agg = new ProgressAggregator({ os: 'LINUX', now: () => clock.now() });
    agg.update(vp('d', { doneBytes: MiB }));
    const r = agg.report({ totalCpuPct: 100.4, agentCpuPct: 3.14159, totalMemMB: 900.5, agentMemMB: 80, totalDiskIoMBps: 12.345, agentDiskIoMBps: null })!;
    expect(r).toMatchObject({ total_cpu_usage: 100, agent_cpu_usage: 3.14, total_mem_usage: 900.5, agent_mem_usage: 80, total_disk_io: 12.35 });
    expect(r.agent_disk_io).toBeUndefined();
    expect(progressReportSchema.safeParse(r).success).toBe(true);
  });
});
