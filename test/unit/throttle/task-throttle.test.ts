// A task's throttle wired together: rules fetched at start, the gate
// following them, and over-speed protection stopping the task.
import { describe, expect, it } from 'vitest';
import type { FerryError } from '../../../src/errors/ferry-error.js';
import { FakeClock } from '../../../src/replication/throttle/clock.js';
import { TaskThrottle } from '../../../src/replication/throttle/task-throttle.js';

describe('TaskThrottle', () => {
  it('applies fetched rules, and stops the task when the wire runs over limit × (1 + threshold)', async () => {
    const clock = new FakeClock(new Date(2026, 5, 15, 12, 0));
    let wire = 0;
    let stopped: FerryError | null = null;
    const t = new TaskThrottle({
      clock,
      fetchRules: async () => ({ speed_limit: [{ start: '0:00', end: '23:59', speed: 10, over_speed_threshold: 20 }] }),
      wireBytes: () => wire,
      onOverSpeed: (e) => (stopped = e),
    });
    await t.start();
    expect(t.gate.active.limitMbps).toBe(10);
    // Something bypasses the gate at 20 Mbit/s.
    for (let i = 0; i < 300 && !stopped; i++) {
      wire += (20e6 / 8) / 10;
      await clock.advanceAsync(100, 100);
    }
    expect(stopped).not.toBeNull();
    expect(stopped!.message).toMatch(/over-speed protection: measured 20\.0 Mbit\/s.*limit of 10 Mbit\/s \+ 20%/);
    await expect(t.gate.acquire(1_000_000)).rejects.toThrow(/over-speed/);
    t.stop();
  });

  it('does not hold the copy back for long when the control plane is slow to give the rules', async () => {
    const clock = new FakeClock(new Date(2026, 5, 15, 12, 0));
    let answer: (v: unknown) => void = () => undefined;
    const t = new TaskThrottle({
      clock,
      defaults: () => ({ speedLimitMbps: 50 }),
      fetchRules: () => new Promise((r) => (answer = r)),
    });
    let started = false;
    void t.start(5_000).then(() => (started = true));
    await clock.advanceAsync(4_900, 100);
    expect(started).toBe(false);
    await clock.advanceAsync(200, 100);
    expect(started).toBe(true);
    expect(t.gate.active.limitMbps).toBe(50); // the task's own limit meanwhile
    answer({ speed_limit: [{ start: '0:00', end: '23:59', speed: 8 }] });
    await clock.advanceAsync(0);
    expect(t.gate.active.limitMbps).toBe(8);
    t.stop();
  });
});
