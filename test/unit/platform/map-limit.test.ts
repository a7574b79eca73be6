// mapLimit and mapLimitSettled: at most `limit` at a time, results in the
// list's order; neither starts an item after a failure; mapLimit rejects at
// once, the settled variant waits for what it started and throws the
// failure of the first item in order;
// concurrencyLimit caps calls started one by one, in the order they came.
import { describe, expect, it } from 'vitest';
import { concurrencyLimit, mapLimit, mapLimitSettled } from '../../../src/platform/map-limit.js';

/** An async step that takes `turns` trips through the event loop, counting how many run at once. */
function counter() {
  let running = 0;
  const c = {
    most: 0,
    ended: [] as number[],
    started: [] as number[],
    step: async (n: number, turns: number, fail = false) => {
      c.started.push(n);
      running++;
      c.most = Math.max(c.most, running);
      for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
      running--;
      c.ended.push(n);
      if (fail) throw new Error(`item ${n} failed`);
      return n * 10;
    },
  };
  return c;
}

describe('mapLimit', () => {
  it('runs at most `limit` at a time and keeps the results in the list\'s order', async () => {
    const c = counter();
    expect(await mapLimit([1, 2, 3, 4, 5], 2, (n) => c.step(n, 6 - n))).toEqual([10, 20, 30, 40, 50]);
    expect(c.most).toBe(2);
  });

  it('rejects with the first failure at once and starts nothing after it', async () => {
    const c = counter();
    // Item 1 fails on its first turn while 2 still runs: the rejection does not wait for 2, and 3 never starts, not even once 2 has ended.
    await expect(mapLimit([1, 2, 3], 2, (n) => c.step(n, n === 1 ? 1 : 5, n === 1))).rejects.toThrow('item 1 failed');
    expect(c.ended).toEqual([1]);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(c.ended).toEqual([1, 2]);
    expect(c.started).toEqual([1, 2]);
  });

  it('runs one at a time when given a limit below one or not a number', async () => {
    for (const limit of [0, -3, Number.NaN]) {
      const c = counter();
      expect(await mapLimit([1, 2], limit, (n) => c.step(n, 1))).toEqual([10, 20]);
      expect(c.most).toBe(1);
    }
  });
});

describe('mapLimitSettled', () => {
  it('runs at most `limit` at a time and keeps the results in the list\'s order', async () => {
    const c = counter();
    expect(await mapLimitSettled([1, 2, 3, 4, 5], 3, (n) => c.step(n, 6 - n))).toEqual([10, 20, 30, 40, 50]);
    expect(c.most).toBe(3);
  });

  it('after a failure starts nothing more, waits for what runs, and throws the first failed item\'s error in the list\'s order', async () => {
    const c = counter();
    // Item 2 fails late, item 3 fails first: 2's error is the one thrown, and only once 1, 2 and 3 have ended.
    await expect(mapLimitSettled([1, 2, 3, 4, 5], 3, (n) => c.step(n, n === 3 ? 1 : 5, n === 2 || n === 3))).rejects.toThrow('item 2 failed');
    expect(c.started).toEqual([1, 2, 3]);
    expect([...c.ended].sort()).toEqual([1, 2, 3]);
  });

  it('returns an empty list for no items', async () => {
    expect(await mapLimitSettled([], 4, async () => 1)).toEqual([]);
  });
});

describe('concurrencyLimit', () => {
  it('runs at most `limit` calls at once, the waiting ones in the order they came, also after a failure', async () => {
    const c = counter();
    const limited = concurrencyLimit(2);
    const calls = [1, 2, 3, 4, 5].map((n) => limited(() => c.step(n, n === 1 ? 8 : 2, n === 2)));
    const results = await Promise.allSettled(calls);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([10, 'item 2 failed', 30, 40, 50]);
    expect(c.most).toBe(2);
    expect(c.started).toEqual([1, 2, 3, 4, 5]);
  });
});
