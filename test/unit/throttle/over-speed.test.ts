// Over-speed protection on a fake clock: only a sustained excess over
// limit × (1 + threshold %) stops the task, with a message that says so.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/replication/throttle/clock.js';
import { OverSpeedDetector, overSpeedError, type OverSpeedInfo } from '../../../src/replication/throttle/over-speed.js';

/** A sender whose wire rate (Mbit/s) can be changed; bytes grow on every clock tick of 100 ms. */
function setup(limitMbps: number | null, thresholdPct: number | null) {
  const clock = new FakeClock(0);
  let bytes = 0;
  let rateMbps = 0;
  const limit = { limitMbps, overSpeedThresholdPct: thresholdPct };
  const tick = () => {
    bytes += (rateMbps * 1e6) / 8 / 10;
    clock.setTimer(tick, 100);
  };
  clock.setTimer(tick, 100);
  const trips: OverSpeedInfo[] = [];
  const d = new OverSpeedDetector({ clock, wireBytes: () => bytes, limit: () => limit, onOverSpeed: (i) => trips.push(i) });
  d.start();
  return { clock, trips, limit, setRate: (r: number) => (rateMbps = r), detector: d };
}

describe('OverSpeedDetector', () => {
  it('does not trip at or under limit × (1 + threshold)', () => {
    const s = setup(20, 50);
    s.setRate(29.5);
    s.clock.advance(120_000);
    expect(s.trips).toEqual([]);
  });

  it('does not trip on a short spike', () => {
    const s = setup(20, 50);
    s.setRate(20);
    s.clock.advance(30_000);
    s.setRate(200);
    s.clock.advance(1_500);
    s.setRate(20);
    s.clock.advance(60_000);
    expect(s.trips).toEqual([]);
  });

  it('trips once after a sustained excess: the window, then the sustain period', () => {
    const s = setup(20, 50);
    s.setRate(40);
    s.clock.advance(19_000);
    expect(s.trips).toEqual([]);
    s.clock.advance(2_000);
    expect(s.trips).toHaveLength(1);
    expect(s.trips[0]!.measuredMbps).toBeCloseTo(40, 0);
    expect(s.trips[0]!.allowedMbps).toBe(30);
    s.clock.advance(60_000);
    expect(s.trips).toHaveLength(1);
    expect(s.clock.pendingTimers()).toBe(1); // only the test's own tick remains
  });

  it('threshold 0 trips on anything over the limit; no limit or no threshold never trips', () => {
    const zero = setup(20, 0);
    zero.setRate(21);
    zero.clock.advance(30_000);
    expect(zero.trips).toHaveLength(1);
    const unlimited = setup(null, 10);
    unlimited.setRate(1000);
    unlimited.clock.advance(60_000);
    expect(unlimited.trips).toEqual([]);
    const off = setup(20, null);
    off.setRate(1000);
    off.clock.advance(60_000);
    expect(off.trips).toEqual([]);
  });

  it('a lower limit starts a fresh window (bytes sent under the old limit do not count)', () => {
    const s = setup(100, 10);
    s.setRate(100);
    s.clock.advance(30_000);
    s.limit.limitMbps = 20;
    s.setRate(20);
    s.clock.advance(60_000);
    expect(s.trips).toEqual([]);
  });

  it('the error names the measured rate, the limit and the threshold', () => {
    const e = overSpeedError({ measuredMbps: 41.23, limitMbps: 20, thresholdPct: 50, allowedMbps: 30, windowMs: 10_000 });
    expect(e.code).toBe('FERRY_OVER_SPEED');
    expect(e.message).toMatch(/over-speed protection: measured 41\.2 Mbit\/s over 10 s, above the limit of 20 Mbit\/s \+ 50% \(30\.0 Mbit\/s\)/);
  });
});
