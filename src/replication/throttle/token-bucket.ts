// A token bucket that admits wire bytes at a set rate (a ByteGate). One
// bucket is shared by all of a task's connections: waiters are served in
// arrival order, so one connection cannot starve another.
//
// The burst is small (BURST_SECONDS of the rate): after idling, at most that
// much goes out at once. A request larger than the burst is admitted once the
// bucket holds a full burst and leaves the bucket in debt, which later
// requests pay off — so the long-run rate stays exact whatever the frame size.
// setRate() takes effect at once, also for requests already waiting.

import type { ByteGate } from '../types.js';
import { abortError, type Clock, type TimerHandle } from './clock.js';

export const BURST_SECONDS = 0.25;

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (e: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class TokenBucket implements ByteGate {
  private rate: number | null;
  private tokens = 0;
  private last: number;
  private readonly queue: Waiter[] = [];
  private timer: TimerHandle | null = null;
  private closedWith: Error | null = null;
  /** Bytes admitted so far (all connections). */
  admittedBytes = 0;
  /** Called after each admission (for meters; must be cheap). */
  onAdmit?: (bytes: number, at: number) => void;

  /** `bytesPerSec` null = unlimited. */
  constructor(
    private readonly clock: Clock,
    bytesPerSec: number | null,
  ) {
    this.rate = normalise(bytesPerSec);
    this.last = clock.now();
    this.tokens = this.burst();
  }

  get bytesPerSec(): number | null {
    return this.rate;
  }

  private burst(): number {
    return this.rate === null ? Infinity : this.rate * BURST_SECONDS;
  }

  private refill(now: number): void {
    if (this.rate !== null) {
      const dt = Math.max(0, now - this.last) / 1000;
      this.tokens = Math.min(this.burst(), this.tokens + dt * this.rate);
    }
    this.last = now;
  }

  /** Changes the rate now; waiting requests are re-timed. */
  setRate(bytesPerSec: number | null): void {
    const next = normalise(bytesPerSec);
    if (next === this.rate) return;
    this.refill(this.clock.now());
    const wasUnlimited = this.rate === null;
    this.rate = next;
    // Keep any debt (it is owed at the new rate), but no more credit than the
    // new burst. Coming from unlimited, start empty: what went out unlimited
    // owed nothing, and the new limit starts without a burst.
    this.tokens = wasUnlimited ? 0 : Math.min(this.tokens, this.burst());
    this.pump();
  }

  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (bytes <= 0) return Promise.resolve();
    if (this.queue.length === 0) {
      this.refill(this.clock.now());
      if (this.admissible(bytes)) {
        this.admit(bytes);
        return Promise.resolve();
      }
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { bytes, resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) this.queue.splice(i, 1);
          reject(abortError(signal));
          this.pump();
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.queue.push(w);
      this.pump();
    });
  }

  private admissible(bytes: number): boolean {
    if (this.rate === null) return true;
    return this.tokens >= Math.min(bytes, this.burst()) - 1e-6;
  }

  private admit(bytes: number): void {
    if (this.rate !== null) this.tokens -= bytes;
    this.admittedBytes += bytes;
    this.onAdmit?.(bytes, this.clock.now());
  }

  /** Admits what it can, then sleeps until the head of the queue can go. */
  private pump(): void {
    this.timer?.cancel();
    this.timer = null;
    this.refill(this.clock.now());
    while (this.queue.length > 0 && this.admissible(this.queue[0]!.bytes)) {
      const w = this.queue.shift()!;
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      this.admit(w.bytes);
      w.resolve();
    }
    const head = this.queue[0];
    if (head && this.rate !== null) {
      const need = Math.min(head.bytes, this.burst()) - this.tokens;
      const ms = Math.max(1, Math.ceil((need / this.rate) * 1000));
      this.timer = this.clock.setTimer(() => this.pump(), ms);
    }
  }

  /** Rejects every waiting and every later request (the task is stopping). */
  close(reason: Error): void {
    this.closedWith ??= reason;
    this.timer?.cancel();
    this.timer = null;
    for (const w of this.queue.splice(0)) {
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.reject(reason);
    }
  }
}

function normalise(r: number | null): number | null {
  if (r === null || !Number.isFinite(r) || r <= 0) return null;
  return r;
}
