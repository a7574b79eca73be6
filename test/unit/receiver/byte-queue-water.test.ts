// ByteQueue's thresholds can change while it holds bytes (the receiver's
// file sessions share one budget of queued bytes, file-session.ts): lowered
// below what it holds, it asks to pause at once; raised above it, a paused
// queue asks to resume at once, without waiting for its consumer.
import { describe, expect, it } from 'vitest';
import { ByteQueue } from '../../../src/receiver/byte-queue.js';

const MiB = 1 << 20;

describe('ByteQueue.setWater', () => {
  it('pauses at once when the high water falls below what is queued, and resumes at once when the low water rises above it', () => {
    const calls: boolean[] = [];
    const q = new ByteQueue(32 * MiB, 8 * MiB, (paused) => calls.push(paused));
    q.push(Buffer.alloc(12 * MiB));
    expect(calls).toEqual([]);
    q.setWater(8 * MiB, 2 * MiB);
    expect(calls).toEqual([true]);
    q.push(Buffer.alloc(MiB));
    expect(calls.at(-1)).toBe(true);
    q.setWater(32 * MiB, 16 * MiB);
    expect(calls.at(-1)).toBe(false);
  });

  it('keeps pausing and resuming by the new thresholds as bytes come and go', async () => {
    const calls: boolean[] = [];
    const q = new ByteQueue(32 * MiB, 8 * MiB, (paused) => calls.push(paused));
    q.setWater(4 * MiB, 1 * MiB);
    calls.length = 0;
    q.push(Buffer.alloc(3 * MiB));
    expect(calls).toEqual([]);
    q.push(Buffer.alloc(2 * MiB));
    expect(calls).toEqual([true]);
    q.end();
    const seen: number[] = [];
    for await (const b of q) seen.push(b.length);
    expect(seen).toEqual([3 * MiB, 2 * MiB]);
    // 2 MiB left after the first buffer is above the new low water: the resume came with the second.
    expect(calls).toEqual([true, false]);
  });
});
