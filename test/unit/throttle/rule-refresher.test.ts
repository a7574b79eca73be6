// The rule refresher: fetch at start and every minute; failures and invalid
// rules keep the previous schedule in force.
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../../src/errors/ferry-error.js';
import { FakeClock } from '../../../src/replication/throttle/clock.js';
import { RuleRefresher } from '../../../src/replication/throttle/rule-refresher.js';
import { ScheduledGate } from '../../../src/replication/throttle/scheduled-gate.js';
import { SpeedSchedule } from '../../../src/replication/throttle/speed-schedule.js';

const rules = (speed: number) => ({ speed_limit: [{ start: '0:00', end: '23:59', speed }] });

describe('RuleRefresher', () => {
  it('fetches at start and every minute; bad rules and failures keep the last good ones', async () => {
    const clock = new FakeClock(new Date(2026, 5, 15, 10, 0));
    const gate = new ScheduledGate(clock);
    const answers: (() => unknown)[] = [
      () => rules(20),
      () => rules(40),
      () => ({ speed_limit: [{ start: '8:00', end: '12:00', speed: 1 }, { start: '11:00', end: '13:00', speed: 2 }] }),
      () => {
        throw new Error('connect ECONNREFUSED');
      },
      () => ({ speed_limit: [{ start: '0:00', end: '23:59', speed: -1 }] }),
      () => rules(60),
    ];
    let calls = 0;
    const errors: FerryError[] = [];
    const r = new RuleRefresher({
      clock,
      fetchRules: async () => answers[Math.min(calls++, answers.length - 1)]!(),
      defaults: () => ({ speedLimitMbps: 5 }),
      apply: (s) => gate.setSchedule(s),
      onError: (e) => errors.push(e),
    });
    await r.start();
    expect(gate.active.limitMbps).toBe(20);
    const expectAfterMinute = async (mbps: number) => {
      await clock.advanceAsync(60_000, 1_000);
      expect(gate.active.limitMbps).toBe(mbps);
    };
    await expectAfterMinute(40);
    await expectAfterMinute(40);
    expect(errors.at(-1)!.code).toBe('SMS.9001');
    expect(errors.at(-1)!.message).toMatch(/previous ones stay in force.*overlap/);
    await expectAfterMinute(40);
    expect(errors.at(-1)!.message).toMatch(/could not fetch.*ECONNREFUSED/);
    await expectAfterMinute(40);
    expect(errors.at(-1)!.message).toMatch(/speed -1 is invalid/);
    await expectAfterMinute(60);
    expect(calls).toBe(6);
    await r.refreshNow(); // SYNC: fetch at once
    expect(calls).toBe(7);
    r.stop();
    gate.close();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('the task speed_limit fills the gaps of fetched rules', async () => {
    const clock = new FakeClock(new Date(2026, 5, 15, 20, 0));
    let applied: SpeedSchedule | null = null;
    const r = new RuleRefresher({
      clock,
      fetchRules: async () => ({ speed_limit: [{ start: '8:00', end: '18:00', speed: 20 }] }),
      defaults: () => ({ speedLimitMbps: 200 }),
      apply: (s) => (applied = s),
    });
    await r.start();
    r.stop();
    expect(applied!.at(20 * 3_600_000).limitMbps).toBe(200);
  });
});
