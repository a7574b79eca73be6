// The shared token bucket and the schedule-driven gate, on a fake clock:
// rates are exact, bursts are small, and rate changes (new segment, new
// rules) apply within a second, also to requests already waiting.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/replication/throttle/clock.js';
import { ScheduledGate } from '../../../src/replication/throttle/scheduled-gate.js';
import { SpeedSchedule } from '../../../src/replication/throttle/speed-schedule.js';
import { TokenBucket } from '../../../src/replication/throttle/token-bucket.js';
import type { ByteGate } from '../../../src/replication/types.js';

const MBPS = 1_000_000 / 8;

/** Local date at h:m:s today (local time, so the tests hold in any TZ). */
function localAt(h: number, m: number, s = 0): Date {
  return new Date(2026, 5, 15, h, m, s, 0);
}

/** Starts `n` senders that push `frame`-byte frames through `gate` until `stop()`; logs admissions. */
function senders(clock: FakeClock, gate: ByteGate, n: number, frame: number) {
  const log: { t: number; bytes: number; sender: number }[] = [];
  let running = true;
  const loops = Array.from({ length: n }, async (_, sender) => {
    try {
      while (running) {
        await gate.acquire(frame);
        log.push({ t: clock.now(), bytes: frame, sender });
      }
    } catch {
      // The gate was closed under a waiting sender: the pass is over.
    }
  });
  return {
    log,
    bytesBetween: (a: number, b: number) => log.filter((e) => e.t >= a && e.t < b).reduce((s, e) => s + e.bytes, 0),
    stop: () => {
      running = false;
      return loops;
    },
  };
}

describe('TokenBucket', () => {
  it('admits at the set rate, shared fairly by several connections', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket(clock, 20 * MBPS);
    const s = senders(clock, bucket, 3, 64 * 1024);
    await clock.advanceAsync(20_000, 5);
    const tenS = s.bytesBetween(5_000, 15_000);
    expect(tenS / 10 / MBPS).toBeGreaterThan(20 * 0.99);
    expect(tenS / 10 / MBPS).toBeLessThan(20 * 1.01);
    const per = [0, 1, 2].map((k) => s.log.filter((e) => e.sender === k).length);
    expect(Math.max(...per) - Math.min(...per)).toBeLessThanOrEqual(1);
    s.stop();
    bucket.close(new Error('done'));
  });

  it('bursts at most 250 ms worth after idling', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket(clock, 8 * MBPS); // 1 MB/s
    clock.advance(60_000);
    const s = senders(clock, bucket, 1, 10_000);
    await clock.advanceAsync(0);
    // All admitted at t=60000 with no time passing: the burst.
    const burst = s.bytesBetween(60_000, 60_001);
    expect(burst).toBeLessThanOrEqual(250_000 + 10_000);
    expect(burst).toBeGreaterThanOrEqual(240_000);
    s.stop();
    bucket.close(new Error('done'));
  });

  it('frames larger than the burst still average the exact rate', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket(clock, 2 * MBPS); // 250 kB/s, burst 62.5 kB
    const s = senders(clock, bucket, 2, 1024 * 1024);
    await clock.advanceAsync(60_000, 10);
    const rate = s.bytesBetween(10_000, 50_000) / 40;
    // 1 MiB frames at 250 kB/s: one frame every ~4.2 s; allow one frame of quantisation.
    expect(Math.abs(rate - 2 * MBPS)).toBeLessThanOrEqual((1024 * 1024) / 40 + 1);
    s.stop();
    bucket.close(new Error('done'));
  });

  it('a rate change re-times requests that are already waiting', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket(clock, 1 * MBPS);
    const s = senders(clock, bucket, 2, 50_000);
    await clock.advanceAsync(5_000, 5);
    bucket.setRate(100 * MBPS);
    await clock.advanceAsync(1_000, 1);
    expect(s.bytesBetween(5_000, 6_000) / MBPS).toBeGreaterThan(95);
    void s.stop();
    await clock.advanceAsync(100, 1);
    // Unlimited: a request larger than any burst goes at once, even in debt.
    const inDebt = bucket.acquire(10_000_000);
    await clock.advanceAsync(1_000, 10);
    await inDebt;
    bucket.setRate(null);
    let done = false;
    void bucket.acquire(10_000_000).then(() => (done = true));
    await clock.advanceAsync(0);
    expect(done).toBe(true);
    bucket.close(new Error('done'));
  });

  it('from unlimited back to a limit: no old debt, no burst, then the exact rate', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket(clock, 8 * MBPS); // 1 MB/s
    await bucket.acquire(5_000_000); // 5 s of debt at 1 MB/s
    bucket.setRate(null);
    await bucket.acquire(50_000_000);
    clock.advance(1_000);
    bucket.setRate(8 * MBPS);
    const s = senders(clock, bucket, 1, 10_000);
    await clock.advanceAsync(10_000, 5);
    expect(s.log[0]!.t).toBe(1_010); // 10 kB at 1 MB/s, from an empty bucket
    expect(s.bytesBetween(1_000, 11_000)).toBeGreaterThanOrEqual(9_990_000);
    expect(s.bytesBetween(1_000, 11_000)).toBeLessThanOrEqual(10_010_000);
    void s.stop();
    bucket.close(new Error('done'));
  });

  it('rejects a waiting request when its signal aborts, and close() rejects the rest', async () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket(clock, 1 * MBPS);
    await bucket.acquire(1_000_000); // leaves the bucket in debt
    const ac = new AbortController();
    const a = bucket.acquire(1000, ac.signal);
    const b = bucket.acquire(1000);
    ac.abort();
    await expect(a).rejects.toMatchObject({ name: 'AbortError' });
    bucket.close(new Error('stopping'));
    await expect(b).rejects.toThrow('stopping');
  });
});

describe('ScheduledGate', () => {
  const body = {
    speed_limit: [
      { start: '07:00', end: '08:00', speed: 20 },
      { start: '08:00', end: '09:00', speed: 100 },
      { start: '09:00', end: '9:01', speed: 0 },
    ],
  };

  it('switches from 20 to 100 Mbit/s at the boundary, in the middle of a pass', async () => {
    const start = localAt(7, 59, 40);
    const clock = new FakeClock(start);
    const gate = new ScheduledGate(clock, SpeedSchedule.parse(body));
    expect(gate.active.limitMbps).toBe(20);
    const changes: number[] = [];
    gate.onChange((a, t) => changes.push(t - start.getTime()));
    const s = senders(clock, gate, 4, 64 * 1024);
    await clock.advanceAsync(40_000, 2);
    const t0 = start.getTime();
    const boundary = t0 + 20_000;
    expect(changes).toEqual([20_001]);
    const before = s.bytesBetween(boundary - 10_000, boundary) / 10 / MBPS;
    const after = s.bytesBetween(boundary + 1_000, boundary + 11_000) / 10 / MBPS;
    expect(before).toBeGreaterThan(19);
    expect(before).toBeLessThan(21);
    expect(after).toBeGreaterThan(99);
    expect(after).toBeLessThan(101);
    // Within a second of the boundary the new rate is fully in force.
    expect(s.bytesBetween(boundary + 10, boundary + 1_010) / MBPS).toBeGreaterThan(95);
    s.stop();
    gate.close();
  });

  it('a segment of speed 0 lifts the limit, and its end restores the fallback', async () => {
    const clock = new FakeClock(localAt(8, 59, 59));
    const gate = new ScheduledGate(clock, SpeedSchedule.parse(body, { speedLimitMbps: 7 }));
    expect(gate.active.limitMbps).toBe(100);
    clock.advance(1_000);
    expect(gate.active.limitMbps).toBe(100); // the timer fires 1 ms after the edge
    clock.advance(1);
    expect(gate.active.limitMbps).toBeNull();
    expect(gate.bucket.bytesPerSec).toBeNull();
    clock.advance(60_000);
    expect(gate.active.limitMbps).toBe(7);
    expect(gate.active.segment).toBeNull();
    gate.close();
  });

  it('applies new rules mid-pass at once', async () => {
    const clock = new FakeClock(localAt(7, 10));
    const gate = new ScheduledGate(clock, SpeedSchedule.parse(body));
    const s = senders(clock, gate, 2, 32 * 1024);
    await clock.advanceAsync(5_000, 5);
    const t = clock.now();
    gate.setSchedule(SpeedSchedule.parse({ speed_limit: [{ start: '07:00', end: '08:00', speed: 50 }] }));
    expect(gate.active.limitMbps).toBe(50);
    await clock.advanceAsync(11_000, 5);
    const r = s.bytesBetween(t + 1_000, t + 11_000) / 10 / MBPS;
    expect(r).toBeGreaterThan(49);
    expect(r).toBeLessThan(51);
    s.stop();
    gate.close();
  });

  it('crosses midnight into the next day', () => {
    const clock = new FakeClock(localAt(23, 59, 58));
    const gate = new ScheduledGate(clock, SpeedSchedule.parse({ speed_limit: [{ start: '22:00', end: '0:30', speed: 5 }, { start: '0:30', end: '22:00', speed: 9 }] }));
    expect(gate.active.limitMbps).toBe(5);
    clock.advance(5_000);
    expect(gate.active.limitMbps).toBe(5);
    clock.advance(30 * 60_000);
    expect(gate.active.limitMbps).toBe(9);
    gate.close();
  });
});
