// Backoff arithmetic of the control-plane client: full jitter stays within
// [0, min(cap, base·2^n)), Retry-After parses as seconds or an HTTP date, and
// an aborted sleep rejects at once.

import { describe, expect, it } from 'vitest';
import { fullJitterDelay, parseRetryAfter, sleep } from '../../../src/sms-client/backoff.js';

const policy = { maxAttempts: 5, maxElapsedMs: 60_000, baseDelayMs: 100, maxDelayMs: 1_000 };

describe('backoff', () => {
  it('full jitter grows exponentially up to the cap', () => {
    expect(fullJitterDelay(policy, 0, () => 0.999)).toBe(99);
    expect(fullJitterDelay(policy, 2, () => 0.999)).toBe(399);
    expect(fullJitterDelay(policy, 10, () => 0.999)).toBe(999);
    expect(fullJitterDelay(policy, 40, () => 0.5)).toBe(500);
    expect(fullJitterDelay(policy, 3, () => 0)).toBe(0);
  });

  it('parses Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-11-25T12:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter(['3'], now)).toBe(3000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('an aborted sleep rejects with the reason', async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    ac.abort(new Error('shutdown'));
    await expect(p).rejects.toThrow('shutdown');
    await expect(sleep(1, AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });
});
