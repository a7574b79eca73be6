// What a failed write to a target means to the agent: a full or over-quota
// file system is SMS.1315 (insufficient free space on the target partition),
// which the operator fixes by growing or freeing the target and resuming;
// anything else is SMS.0805 (migrating the partition failed). The message
// names what was being written and keeps the system's own words. Used by the
// block and file session kinds; owns no state.

import { FerryError, errorMessage } from '../errors/ferry-error.js';

const FULL = new Set(['ENOSPC', 'EDQUOT']);

/** Whether `e` says the target's file system is full or over quota. */
export function isTargetFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && FULL.has(code);
}

/** Wraps an error from writing `what` to target `target`; FerryErrors pass through unchanged. */
export function targetWriteError(e: unknown, target: string, what: string): FerryError {
  if (e instanceof FerryError) return e;
  if (isTargetFull(e)) {
    return new FerryError(
      'SMS.1315',
      `Insufficient free space on target partition ${target}: ${what}: ${errorMessage(e)}. Free or grow the target's file system, then resume the pass: what was written so far is kept`,
      { cause: e },
    );
  }
  return new FerryError('SMS.0805', `Failed to migrate partition ${target}: ${what}: ${errorMessage(e)}`, { cause: e });
}
