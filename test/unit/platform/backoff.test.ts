// The one retry policy: exponential delays with a cap and three kinds of
// jitter, and a retry loop that counts consecutive failures (progress starts
// the count again), stops on a fatal error or after its budget, and ends its
// wait at once when aborted.

import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay, retry, type RetryOptions } from '../../../src/platform/backoff.js';

describe('delay schedule', () => {
  it('doubles from the base up to the cap, drawn below the ceiling as the jitter says', () => {
    const s = { baseMs: 100, maxMs: 1000 };
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay({ ...s, jitter: 'none' }, n))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay({ ...s, jitter: 'full' }, 2, () => 0.5)).toBe(200);
    expect(backoffDelay({ ...s, jitter: 'full' }, 2, () => 0)).toBe(0);
    expect(backoffDelay({ ...s, jitter: 'equal' }, 2, () => 0)).toBe(200);
    expect(backoffDelay({ ...s, jitter: 'equal' }, 2, () => 1)).toBe(400);
  });

  it('a Backoff counts failures until reset', () => {
    const b = new Backoff({ baseMs: 10, maxMs: 100, jitter: 'none' });
    expect([b.next(), b.next(), b.next()]).toEqual([10, 20, 40]);
    expect(b.count).toBe(3);
    b.reset();
    expect(b.next()).toBe(10);
  });
});

describe('retry loop', () => {
  const options = (over: Partial<RetryOptions> = {}): RetryOptions => ({
    schedule: { baseMs: 1, maxMs: 2, jitter: 'none' },
    maxAttempts: 3,
    isRetryable: (e) => (e as Error).message === 'lost',
    abortError: () => new Error('stopped'),
    ...over,
  });

  it('gives up after maxAttempts failures in a row', async () => {
    let calls = 0;
    const delays: number[] = [];
    const p = retry(async () => {
      calls++;
      throw new Error('lost');
    }, options({ onRetry: (_e, _n, d) => delays.push(d) }));
    await expect(p).rejects.toThrow('lost');
    expect(calls).toBe(3);
    expect(delays).toEqual([2, 2]);
  });

  it('an attempt that made progress starts the count again', async () => {
    let calls = 0;
    const result = await retry(async (progress) => {
      calls++;
      if (calls === 5) return 'done';
      if (calls % 2 === 0) progress.made();
      throw new Error('lost');
    }, options());
    expect(result).toBe('done');
    expect(calls).toBe(5);
  });

  it('throws a fatal error at once', async () => {
    let calls = 0;
    const p = retry(async () => {
      calls++;
      throw new Error('refused');
    }, options());
    await expect(p).rejects.toThrow('refused');
    expect(calls).toBe(1);
  });

  it('an abort ends the wait and throws the abort error', async () => {
    const ac = new AbortController();
    const p = retry(async () => {
      setImmediate(() => ac.abort());
      throw new Error('lost');
    }, options({ schedule: { baseMs: 3_600_000, maxMs: 3_600_000, jitter: 'none' }, signal: ac.signal }));
    await expect(p).rejects.toThrow('stopped');
  });
});
