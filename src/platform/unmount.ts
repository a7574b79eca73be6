// Unmounting a directory this process mounted, the one way every part of
// ferry does it: `umount DIR`, and when that fails (busy: a walker or a shell
// still holds something open below it) a lazy detach (`umount -l`), logged,
// so that the rest of a teardown still goes and the kernel finishes when the
// last reference goes. Must not touch: any mount it is not given.

import { exec } from './exec.js';
import type { Logger } from './log.js';

const UMOUNT_TIMEOUT_MS = 60_000;

export interface UnmountOptions {
  /** Where the failure is logged (warn); none: not logged. */
  log?: Logger;
  /** The log line's message; default 'unmount failed: detaching lazily'. */
  what?: string;
}

/**
 * Unmounts `dir`, detaching it lazily when it is busy. Throws only when even
 * the lazy detach fails (callers tearing down many mounts catch and go on).
 */
export async function unmountOrDetach(dir: string, o: UnmountOptions = {}): Promise<void> {
  try {
    await exec('umount', [dir], { timeoutMs: UMOUNT_TIMEOUT_MS });
  } catch (e) {
    o.log?.warn({ dir, err: (e as Error).message }, o.what ?? 'unmount failed: detaching lazily');
    await exec('umount', ['-l', dir], { timeoutMs: UMOUNT_TIMEOUT_MS });
  }
}
