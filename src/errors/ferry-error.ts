// Errors that ferry raises on purpose. Every one carries a stable `code`:
// an SMS error code (section 5.1 of the SMS v3 reference) where one fits,
// otherwise a FERRY_* code, both listed in codes.ts (a code that is
// not listed does not compile), or a code another program sent, carried
// through verbatim. Every one also says whether trying again can help
// (`recovery`): callers ask isRetryable() / recoveryOf(), never compare
// codes to decide. Messages say what went wrong and what to do; they never
// contain secrets.

import { recoveryOfCode, type ErrorCode, type ReceivedCode, type Recovery } from './codes.js';

export type { ErrorCode, ReceivedCode, Recovery } from './codes.js';
export { receivedCode } from './codes.js';

export interface FerryErrorOptions {
  cause?: unknown;
  details?: unknown;
  /** This error's recovery when it is not its code's (see codes.ts). */
  recovery?: Recovery;
}

export class FerryError extends Error {
  readonly code: ErrorCode | ReceivedCode;
  readonly recovery: Recovery;
  readonly details?: unknown;

  constructor(code: ErrorCode | ReceivedCode, message: string, options?: FerryErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.recovery = options?.recovery ?? recoveryOfCode(code);
    if (options?.details !== undefined) this.details = options.details;
  }
}

/** A command line the user got wrong: the CLI exits 2. */
export class UsageError extends FerryError {
  constructor(message: string) {
    super('FERRY_USAGE', message);
    this.name = 'UsageError';
  }
}

/** An external program failed, timed out or is missing. */
export class ExecError extends FerryError {
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(code: ErrorCode, message: string, command: string, exitCode: number | null, stderr: string) {
    super(code, message);
    this.name = 'ExecError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** What may be done after `err`: a FerryError says; anything else (a bug, a library's error) is fatal. */
export function recoveryOf(err: unknown): Recovery {
  return err instanceof FerryError ? err.recovery : 'fatal';
}

/** Whether trying the same work again (reconnect, resend, call again) can succeed. */
export function isRetryable(err: unknown): boolean {
  return recoveryOf(err) === 'retryable';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
