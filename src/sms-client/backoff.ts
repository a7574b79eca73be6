// Retry timing for the control-plane client: its budget (attempts, elapsed
// time, delays) and Retry-After parsing. The delay schedule and the
// abortable sleep are the shared ones of platform/backoff.ts, with full
// jitter: many agents call one control plane, and full jitter spreads their
// retries the most.

import { backoffDelay, sleep } from '../platform/backoff.js';

export { sleep };

export interface BackoffPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** Retries stop once this much time has passed since the first attempt. */
  maxElapsedMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  maxAttempts: 5,
  maxElapsedMs: 60_000,
  baseDelayMs: 500,
  maxDelayMs: 15_000,
};

/** Full-jitter delay before retry number `retry` (0 for the first retry). */
export function fullJitterDelay(policy: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  return backoffDelay({ baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs, jitter: 'full' }, retry, random);
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
