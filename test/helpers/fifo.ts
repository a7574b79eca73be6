// Releasing a reader blocked on a fifo. Tests make a thread or a read hang
// (as on a dead disk) by opening a fifo nobody writes to; a writer that opens
// and closes it lets the blocked open() go on.

import { closeSync, constants, openSync } from 'node:fs';

/**
 * Opens `fifo` for writing and closes it, retried every 10 ms while no reader
 * has it open yet (ENXIO), at most `tries` times. True once a reader was
 * woken; false when none came (calling it again then waits as long again).
 */
export async function releaseFifo(fifo: string, tries = 500): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return false;
}
