// The reconnect-and-resume loop both engines run a pass in: each attempt is
// one session (connect, resume from what the receiver acknowledged, send,
// finish); a lost session is retried on the shared backoff policy, a fatal
// one ends the pass. The one decision of what a lost session is lives here
// (isRetryableSessionError), for both engines.
//
// Must not touch: what a session sends or how it resumes (block/, file/).

import { FerryError } from '../../errors.js';
import { retry, type AttemptProgress, type DelaySchedule } from '../../platform/backoff.js';

/**
 * Codes that mean "the session was lost, not refused": reconnecting and
 * resuming may succeed. SMS.0807 is a network error (also what a closed
 * connection reports); FERRY_IDLE_TIMEOUT, a receiver that stopped
 * answering; FERRY_SOURCE_CHANGED, a refused block frame whose source
 * changed before it could be resent (the next session rescans it). The
 * last two only ever come from the block engine.
 */
const RETRYABLE_CODES: ReadonlySet<string> = new Set(['SMS.0807', 'FERRY_IDLE_TIMEOUT', 'FERRY_SOURCE_CHANGED']);

/** Whether a failed session is worth reconnecting for. Everything else (the receiver's refusals, bad input, aborts) ends the pass. */
export function isRetryableSessionError(e: unknown): boolean {
  return e instanceof FerryError && RETRYABLE_CODES.has(e.code);
}

export interface ReconnectPolicy {
  /** Sessions lost in a row, without any acknowledged progress in between, before the pass fails. */
  maxAttempts: number;
  schedule: DelaySchedule;
}

/**
 * Runs sessions until one completes the pass. A session calls
 * `progress.made()` when the receiver acknowledged something: the count of
 * consecutive lost sessions then starts again.
 */
export function withReconnects<T>(
  session: (progress: AttemptProgress) => Promise<T>,
  o: {
    policy: ReconnectPolicy;
    signal?: AbortSignal;
    abortError: () => Error;
    onRetry: (e: unknown, attempt: number, delayMs: number) => void;
  },
): Promise<T> {
  return retry(session, {
    schedule: o.policy.schedule,
    maxAttempts: o.policy.maxAttempts,
    isRetryable: isRetryableSessionError,
    signal: o.signal,
    abortError: o.abortError,
    onRetry: o.onRetry,
  });
}
