// Errors that ferry raises on purpose. Every one carries a stable `code`:
// an SMS error code (section 5.1 of the SMS v3 reference) where one fits,
// otherwise a FERRY_* code. Messages say what went wrong and what to do;
// they never contain secrets.

export class FerryError extends Error {
  readonly code: string;
  readonly details?: unknown;

  constructor(code: string, message: string, options?: { cause?: unknown; details?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
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

  constructor(code: string, message: string, command: string, exitCode: number | null, stderr: string) {
    super(code, message);
    this.name = 'ExecError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
