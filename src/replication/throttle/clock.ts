// Time as the throttle sees it: "now" in epoch milliseconds (whose local
// wall-clock reading picks the speed-limit segment) and timers. Injected
// everywhere so that tests drive a FakeClock instead of waiting, and so that
// `FERRY_CLOCK_OFFSET_MS` can shift the local time a schedule is read by.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Epoch milliseconds; its local-time reading selects the speed segment. */
  now(): number;
  /** Runs `fn` after `ms` (never keeps the process alive). */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

/** The real clock, optionally shifted by `offsetMs` (for dry runs and tests of a schedule). */
export function systemClock(offsetMs = 0): Clock {
  return {
    now: () => Date.now() + offsetMs,
    setTimer(fn, ms) {
      const t = setTimeout(fn, Math.max(0, ms));
      t.unref();
      return { cancel: () => clearTimeout(t) };
    },
  };
}

/**
 * The clock `ferry migrate` and the agent use: the system clock, shifted by
 * FERRY_CLOCK_OFFSET_MS when set (an integer number of milliseconds).
 */
export function clockFromEnv(env: NodeJS.ProcessEnv = process.env): Clock {
  const raw = env.FERRY_CLOCK_OFFSET_MS;
  if (raw === undefined || raw.trim() === '') return systemClock();
  const offset = Number(raw);
  if (!Number.isInteger(offset)) throw new Error(`FERRY_CLOCK_OFFSET_MS must be an integer number of milliseconds, got ${JSON.stringify(raw)}`);
  return systemClock(offset);
}

/** Milliseconds since local midnight of the instant `t` (epoch ms). */
export function localMsOfDay(t: number): number {
  const d = new Date(t);
  return ((d.getHours() * 60 + d.getMinutes()) * 60 + d.getSeconds()) * 1000 + d.getMilliseconds();
}

/** Local time with its UTC offset, e.g. `2026-11-25T14:03:07+01:00` (25 characters). */
export function localIsoTime(t: number): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` +
    `${sign}${p(Math.floor(a / 60))}:${p(a % 60)}`
  );
}

/** Resolves after `ms` on `clock`; rejects with an AbortError when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      timer.cancel();
      reject(abortError(signal!));
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const e = new Error('the operation was aborted', { cause: reason });
  e.name = 'AbortError';
  return e;
}

/** Resolves once every pending promise callback has run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that only moves when told to: `advance(ms)` fires due timers in
 * time order, each seeing `now()` at its due time. For tests.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void }[] = [];

  constructor(start: number | Date) {
    this.t = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(entry);
    return {
      cancel: () => {
        const i = this.timers.indexOf(entry);
        if (i >= 0) this.timers.splice(i, 1);
      },
    };
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  /** Like advance(), but lets promise callbacks run after every timer (for async code under test). */
  async advanceAsync(ms: number, stepMs = 1): Promise<void> {
    const end = this.t + ms;
    await settle();
    while (this.t < end) {
      this.advance(Math.min(stepMs, end - this.t));
      await settle();
    }
  }

  pendingTimers(): number {
    return this.timers.length;
  }
}
