// The progress reporter: periodic and immediate reports, one request at a
// time with only the latest body pending, retries, and a final report.
import { describe, expect, it } from 'vitest';
import type { ProgressReport } from '../../../src/sms/schemas/progress.js';
import { ProgressReporter } from '../../../src/replication/progress/reporter.js';
import { SystemSampler } from '../../../src/replication/progress/system-stats.js';
import { FakeClock } from '../../../src/replication/throttle/clock.js';

function body(progress: number): ProgressReport {
  return { subtask_name: 'MIGRATE_LINUX_BLOCK', progress, replicatesize: progress, totalsize: 100, process_trace: '' };
}

describe('ProgressReporter', () => {
  it('reports every interval and at once when kicked', async () => {
    const clock = new FakeClock(0);
    let progress = 0;
    const sent: { t: number; p: number }[] = [];
    const r = new ProgressReporter({ clock, intervalMs: 5_000, build: () => body(progress), send: async (b) => void sent.push({ t: clock.now(), p: b.progress }) });
    r.start();
    await clock.advanceAsync(12_000, 100);
    expect(sent.map((s) => s.t)).toEqual([0, 5_000, 10_000]);
    progress = 50;
    r.kick();
    await clock.advanceAsync(0);
    expect(sent.at(-1)).toEqual({ t: 12_000, p: 50 });
    progress = 100;
    await r.stop();
    expect(sent.at(-1)!.p).toBe(100);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a slow control plane gets one request at a time, and only the latest figures', async () => {
    const clock = new FakeClock(0);
    let progress = 0;
    const sent: number[] = [];
    let release: (() => void) | null = null;
    const r = new ProgressReporter({
      clock,
      intervalMs: 1_000,
      build: () => body(progress),
      send: (b) =>
        new Promise<void>((res) => {
          sent.push(b.progress);
          release = res;
        }),
    });
    r.start(); // sends progress 0, which hangs
    for (let i = 1; i <= 30; i++) {
      progress = i;
      r.kick();
      await clock.advanceAsync(1_000, 500);
    }
    expect(sent).toEqual([0]);
    release!();
    await clock.advanceAsync(0);
    expect(sent).toEqual([0, 30]);
    release!();
    const stopping = r.stop({ final: false });
    await stopping;
  });

  it('retries failures with the latest body and recovers', async () => {
    const clock = new FakeClock(0);
    let progress = 0;
    let failing = true;
    const attempts: { t: number; p: number }[] = [];
    const r = new ProgressReporter({
      clock,
      intervalMs: 5_000,
      build: () => body(progress),
      send: async (b) => {
        attempts.push({ t: clock.now(), p: b.progress });
        if (failing) throw new Error('503 Service Unavailable');
      },
    });
    r.start();
    await clock.advanceAsync(2_500, 100);
    progress = 7;
    await clock.advanceAsync(1_000, 100);
    expect(attempts.map((a) => a.t)).toEqual([0, 1_000, 3_000]);
    expect(attempts.at(-1)!.p).toBe(7);
    expect(r.lastError).toMatch(/503/);
    failing = false;
    await clock.advanceAsync(5_000, 100);
    expect(r.sent).toBeGreaterThanOrEqual(1);
    expect(r.lastError).toBeNull();
    await r.stop({ final: false });
  });

  it('stop() retries the final report until it goes through', async () => {
    const clock = new FakeClock(0);
    let calls = 0;
    const got: number[] = [];
    const r = new ProgressReporter({
      clock,
      build: () => body(100),
      send: async (b) => {
        if (++calls <= 2) throw new Error('connect ECONNREFUSED');
        got.push(b.progress);
      },
    });
    await r.stop({ timeoutMs: 10_000 });
    expect(got).toEqual([100]);
    expect(calls).toBe(3);
  });

  it('stop() gives up on a control plane that never answers', async () => {
    const clock = new FakeClock(0);
    const r = new ProgressReporter({ clock, build: () => body(1), send: () => new Promise(() => undefined) });
    r.start();
    // Resolves (the test's own timeout catches a hang): stop() never waits on a send that cannot end.
    await expect(r.stop({ timeoutMs: 200 })).resolves.toBeUndefined();
  });
});

describe('SystemSampler', () => {
  it('reads host and agent figures from this machine', async () => {
    const s = new SystemSampler();
    await s.sample();
    await new Promise((r) => setTimeout(r, 300));
    const x = await s.sample();
    expect(x.agentMemMB).toBeGreaterThan(10);
    expect(x.totalMemMB).toBeGreaterThan(10);
    expect(x.agentCpuPct).toBeGreaterThanOrEqual(0);
    expect(x.agentCpuPct).toBeLessThanOrEqual(100);
    expect(x.totalCpuPct).toBeGreaterThanOrEqual(0);
    if (process.platform === 'linux') expect(x.agentDiskIoMBps).toBeGreaterThanOrEqual(0);
  });
});

describe('parseProcIo', () => {
  it('adds read_bytes and write_bytes of /proc/self/io', async () => {
    const { parseProcIo } = await import('../../../src/replication/progress/process-io-linux.js');
    expect(parseProcIo('rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 0\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n')).toBe(12_288);
    expect(parseProcIo('rchar: 1\n')).toBeNull();
  });
});
