// The one retry policy every caller uses (the agent's control-plane loop, the
// SMS client's delays and sleep — its own loop adds 401 renewal, Retry-After
// and an elapsed-time budget —, the progress reporter's schedule, the block
// and file passes' retry loop): an exponential delay schedule
// with a cap and a choice of jitter, a stateful counter of consecutive
// failures over it, one abortable sleep, and a retry loop for work that can
// make progress between failures. Callers keep their own numbers (base, cap,
// attempts) and say next to them why they differ.
//
// Must not touch: what is retryable (callers decide), logging, the clock of
// the throttle (throttle/clock.ts sleeps on an injectable clock for tests).

/**
 * How a delay is drawn below the exponential ceiling min(maxMs, baseMs·2^n):
 * - 'none': the ceiling itself (one sender, nothing to de-synchronise);
 * - 'full': uniform in [0, ceiling) (many clients of one server: spreads them most);
 * - 'equal': uniform in [ceiling/2, ceiling] (spreads, but never retries at once).
 */
export type Jitter = 'none' | 'full' | 'equal';

export interface DelaySchedule {
  baseMs: number;
  maxMs: number;
  jitter: Jitter;
}

/** The delay before retry number `retry` (0 for the first retry, or a failure count: the caller says which). */
export function backoffDelay(schedule: DelaySchedule, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(schedule.maxMs, schedule.baseMs * 2 ** Math.min(retry, 30));
  switch (schedule.jitter) {
    case 'none':
      return ceiling;
    case 'full':
      return Math.floor(random() * ceiling);
    case 'equal':
      return Math.round(ceiling / 2 + random() * (ceiling / 2));
  }
}

/** Consecutive failures over a schedule: `next()` after a failure, `reset()` after a success. */
export class Backoff {
  private failures = 0;
  private readonly schedule: DelaySchedule;

  constructor(schedule: DelaySchedule) {
    this.schedule = schedule;
  }

  /** Delay before the next attempt after one more failure. */
  next(): number {
    this.failures++;
    return backoffDelay(this.schedule, this.failures - 1);
  }

  reset(): void {
    this.failures = 0;
  }

  get count(): number {
    return this.failures;
  }
}

/** `seconds` ± 20 %, in milliseconds: a steady interval that many agents do not keep in step. */
export function jittered(seconds: number): number {
  return Math.round(seconds * 1000 * (0.8 + Math.random() * 0.4));
}

/**
 * Resolves after `ms`, or rejects with the signal's reason as soon as it
 * aborts (at once if it already has); never keeps the process alive past an
 * abort. A caller whose loop checks `signal.aborted` itself can ignore the
 * rejection (see `pause`).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `sleep` that resolves (never rejects) when `signal` aborts: for loops that test `signal.aborted` next. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, signal).catch(() => {});
}

export interface RetryOptions {
  schedule: DelaySchedule;
  /** Consecutive failed attempts, without progress in between, before the last error is thrown. */
  maxAttempts: number;
  /** Whether a failure is worth another attempt; anything else is thrown at once. */
  isRetryable: (e: unknown) => boolean;
  signal?: AbortSignal;
  /** The error to throw when `signal` has aborted before an attempt (or during the wait before it). */
  abortError: () => Error;
  /** Called before each wait, e.g. to log; `attempt` counts consecutive failures from 1. */
  onRetry?: (e: unknown, attempt: number, delayMs: number) => void;
}

/** What an attempt reports to the retry loop while it runs. */
export interface AttemptProgress {
  /** The attempt moved forward (something was acknowledged): the count of consecutive failures starts again. */
  made(): void;
}

/**
 * Runs `attempt` until it succeeds. A failure that is retryable is followed
 * by a wait from the schedule (the n-th consecutive failure waits
 * backoffDelay(schedule, n)) and another attempt, at most `maxAttempts`
 * failures in a row; an attempt that made progress counts as the first
 * failure of a new row. Aborting ends the wait at once and throws
 * `abortError()`; a failure after an abort is thrown as it is.
 */
export async function retry<T>(attempt: (progress: AttemptProgress) => Promise<T>, o: RetryOptions): Promise<T> {
  let failures = 0;
  for (;;) {
    if (o.signal?.aborted) throw o.abortError();
    let progressed = false;
    const progress: AttemptProgress = { made: () => void (progressed = true) };
    try {
      return await attempt(progress);
    } catch (e) {
      if (!o.isRetryable(e) || o.signal?.aborted) throw e;
      failures = progressed ? 1 : failures + 1;
      if (failures >= o.maxAttempts) throw e;
      const delay = backoffDelay(o.schedule, failures);
      o.onRetry?.(e, failures, delay);
      await pause(delay, o.signal);
    }
  }
}
