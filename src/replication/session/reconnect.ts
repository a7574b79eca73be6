// The reconnect-and-resume loop both engines run a pass in: each attempt is
// one session (connect, resume from what the receiver acknowledged, send,
// finish); a lost session is retried on the shared backoff policy, a fatal
// one ends the pass. Whether a session was lost or refused is the error's
// own property (isRetryable in errors/ferry-error.ts), for both engines.
//
// Must not touch: what a session sends or how it resumes (block/, file/).

import { isRetryable } from '../../errors/ferry-error.js';
import { retry, type AttemptProgress, type DelaySchedule } from '../../platform/backoff.js';

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
    // The one decision of what a lost session is: the error's own recovery
    // (errors/). A lost connection, a receiver that stopped answering, a
    // hash mismatch, a refused frame whose source changed are retryable;
    // refusals, bad input and aborts end the pass.
    isRetryable,
    signal: o.signal,
    abortError: o.abortError,
    onRetry: o.onRetry,
  });
}
