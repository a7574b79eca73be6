// Speed-limit rules: which segment applies at which local time, and which
// rule sets are refused.
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../../src/errors/ferry-error.js';
import { DAY_MS, SpeedSchedule } from '../../../src/replication/throttle/speed-schedule.js';

const at = (h: number, m: number, s = 0, ms = 0) => ((h * 60 + m) * 60 + s) * 1000 + ms;

const DAYTIME = {
  speed_limit: [
    { start: '0:00', end: '8:00', speed: 20 },
    { start: '8:00', end: '15:00', speed: 50 },
    { start: '15:00', end: '23:59', speed: 25, over_speed_threshold: 50 },
  ],
};

function rejects(body: unknown, code: string, re: RegExp): void {
  try {
    SpeedSchedule.parse(body);
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe(code);
    expect((err as Error).message).toMatch(re);
    return;
  }
  throw new Error('expected the rules to be rejected');
}

describe('speed schedule: segment selection', () => {
  const s = SpeedSchedule.parse(DAYTIME);

  it('start is inclusive, end exclusive', () => {
    expect(s.at(at(7, 59, 59, 999)).limitMbps).toBe(20);
    expect(s.at(at(8, 0)).limitMbps).toBe(50);
    expect(s.at(at(14, 59, 59, 999)).limitMbps).toBe(50);
    expect(s.at(at(15, 0)).limitMbps).toBe(25);
  });

  it('an end of 23:59 runs to midnight', () => {
    expect(s.at(at(23, 59, 30)).limitMbps).toBe(25);
    expect(s.at(at(23, 59, 59, 999)).limitMbps).toBe(25);
    expect(s.at(0).limitMbps).toBe(20);
  });

  it('tells how long until the next boundary', () => {
    expect(s.at(at(7, 59, 48)).msUntilChange).toBe(12_000);
    expect(s.at(at(23, 0)).msUntilChange).toBe(3_600_000);
  });

  it('a segment crossing midnight covers both sides', () => {
    const n = SpeedSchedule.parse({ speed_limit: [{ start: '22:00', end: '6:00', speed: 200 }, { start: '08:00', end: '18:00', speed: 20 }] });
    expect(n.at(at(22, 0)).limitMbps).toBe(200);
    expect(n.at(at(23, 59, 59)).limitMbps).toBe(200);
    expect(n.at(at(0, 0)).limitMbps).toBe(200);
    expect(n.at(at(5, 59, 59, 999)).limitMbps).toBe(200);
    expect(n.at(at(6, 0)).segment).toBeNull();
    expect(n.at(at(21, 59)).msUntilChange).toBe(60_000);
    expect(n.at(at(23, 0)).msUntilChange).toBe(7 * 3_600_000);
  });

  it('gaps fall back to the task speed_limit, or unlimited', () => {
    const body = { speed_limit: [{ start: '08:00', end: '18:00', speed: 20 }] };
    expect(SpeedSchedule.parse(body).at(at(19, 0))).toMatchObject({ limitMbps: null, segment: null });
    const withTask = SpeedSchedule.parse(body, { speedLimitMbps: 300, overSpeedThresholdPct: 10 });
    expect(withTask.at(at(19, 0))).toMatchObject({ limitMbps: 300, overSpeedThresholdPct: 10, segment: null });
    expect(withTask.at(at(7, 30)).msUntilChange).toBe(30 * 60_000);
    expect(SpeedSchedule.parse(body, { speedLimitMbps: 0 }).at(at(19, 0)).limitMbps).toBeNull();
  });

  it('speed 0 means unlimited, even when the task has a limit', () => {
    const s0 = SpeedSchedule.parse({ speed_limit: [{ start: '0:00', end: '12:00', speed: 0 }] }, { speedLimitMbps: 30 });
    expect(s0.at(at(11, 0)).limitMbps).toBeNull();
    expect(s0.at(at(12, 0)).limitMbps).toBe(30);
  });

  it('a segment threshold wins over the task threshold', () => {
    const t = SpeedSchedule.parse(DAYTIME, { overSpeedThresholdPct: 5 });
    expect(t.at(at(16, 0)).overSpeedThresholdPct).toBe(50);
    expect(t.at(at(9, 0)).overSpeedThresholdPct).toBe(5);
  });

  it('describes what applies for logs and progress lines', () => {
    const s = SpeedSchedule.parse({ speed_limit: [{ start: '8:00', end: '18:00', speed: 20 }, { start: '18:00', end: '20:00', speed: 0 }] }, { speedLimitMbps: 5 });
    expect(s.at(at(9, 0)).describe).toBe('20 Mbit/s (8:00-18:00)');
    expect(s.at(at(19, 0)).describe).toBe('unlimited (18:00-20:00)');
    expect(s.at(at(21, 0)).describe).toBe('5 Mbit/s (outside the segments)');
    expect(SpeedSchedule.flat({ speedLimitMbps: 16 }).at(0).describe).toBe('16 Mbit/s');
    expect(SpeedSchedule.flat().at(0).describe).toBe('unlimited');
  });

  it('an empty rule list is the task default all day', () => {
    const e = SpeedSchedule.parse({ speed_limit: [] }, { speedLimitMbps: 10 });
    expect(e.at(at(3, 0)).limitMbps).toBe(10);
    expect(e.at(at(3, 0)).msUntilChange).toBe(DAY_MS);
  });

  it('accepts the SMS example bodies', () => {
    const one = SpeedSchedule.parse({ speed_limit: [{ start: '00:00', end: '23:59', speed: 1000, over_speed_threshold: 50.0 }] });
    expect(one.at(at(23, 59, 59)).limitMbps).toBe(1000);
    expect(one.at(0).limitMbps).toBe(1000);
  });
});

describe('speed schedule: rejected rules', () => {
  it('bad times (SMS.6405)', () => {
    rejects({ speed_limit: [{ start: '8', end: '9:00', speed: 1 }] }, 'SMS.6405', /speed_limit\[0\]\.start "8"/);
    rejects({ speed_limit: [{ start: '8:00', end: '25:00', speed: 1 }] }, 'SMS.6405', /end "25:00"/);
    rejects({ speed_limit: [{ start: '8:60', end: '9:00', speed: 1 }] }, 'SMS.6405', /8:60/);
    rejects({ speed_limit: [{ start: '24:00', end: '9:00', speed: 1 }] }, 'SMS.6405', /24:00/);
    rejects({ speed_limit: [{ start: '8:00', end: '24:00', speed: 1 }] }, 'SMS.6405', /24:00/);
    rejects({ speed_limit: [{ start: '9:00', end: '9:00', speed: 1 }] }, 'SMS.6405', /must cover some time/);
  });

  it('overlaps (SMS.9001), including across midnight', () => {
    rejects(
      { speed_limit: [{ start: '8:00', end: '12:00', speed: 1 }, { start: '11:00', end: '13:00', speed: 2 }] },
      'SMS.9001',
      /speed_limit\[0\] \(8:00-12:00\) and speed_limit\[1\] \(11:00-13:00\) overlap at 11:00/,
    );
    rejects({ speed_limit: [{ start: '22:00', end: '2:00', speed: 1 }, { start: '1:00', end: '3:00', speed: 2 }] }, 'SMS.9001', /overlap at 01:00/);
    // Touching segments are fine.
    expect(() => SpeedSchedule.parse({ speed_limit: [{ start: '22:00', end: '2:00', speed: 1 }, { start: '2:00', end: '22:00', speed: 2 }] })).not.toThrow();
  });

  it('negative, fractional or huge speeds and bad thresholds (SMS.9001)', () => {
    rejects({ speed_limit: [{ start: '8:00', end: '9:00', speed: -5 }] }, 'SMS.9001', /speed -5 is invalid/);
    rejects({ speed_limit: [{ start: '8:00', end: '9:00', speed: 2.5 }] }, 'SMS.9001', /whole number/);
    rejects({ speed_limit: [{ start: '8:00', end: '9:00', speed: 10_001 }] }, 'SMS.9001', /10000/);
    rejects({ speed_limit: [{ start: '8:00', end: '9:00', speed: 5, over_speed_threshold: 150 }] }, 'SMS.9001', /threshold 150/);
  });

  it('malformed bodies (SMS.9001)', () => {
    rejects({}, 'SMS.9001', /speed_limit/);
    rejects({ speed_limit: [{ start: '8:00', speed: 1 }] }, 'SMS.9001', /speed_limit\.0\.end/);
    rejects(null, 'SMS.9001', /invalid speed-limit rules/);
  });
});
