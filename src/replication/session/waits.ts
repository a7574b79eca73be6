// A session's failure and its waits: the first error fails the session
// (once), and every wait of the session (for window space, queue space,
// an acknowledgement, the end-of-pass answer) ends at once when it does,
// or fails the session itself when the receiver stays silent too long.
// Whatever changes what a wait waits for calls `wake()`.
//
// Must not touch: the channel or any frame (failure listeners do that).

import { FerryError } from '../../errors/ferry-error.js';

export class SessionWaits {
  /** The error the session failed with, once it has. */
  error: Error | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly failListeners: Array<(e: Error) => void> = [];

  /** `fn` runs once, with the first error (e.g. to fail pending requests, to drop the connection). */
  onFailure(fn: (e: Error) => void): void {
    this.failListeners.push(fn);
  }

  fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    for (const fn of this.failListeners) fn(e);
    this.wake();
  }

  /** Lets every wait check its condition again. */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Resolves once `ready()` holds, checking it on every wake; throws the
   * session's error if it fails first. With a finite `idleTimeoutMs`, a wait
   * that sees no wake for that long fails the session with
   * FERRY_IDLE_TIMEOUT (naming `what` it waited for).
   */
  async until(ready: () => boolean, what: string, idleTimeoutMs: number): Promise<void> {
    while (!ready()) {
      if (this.error) throw this.error;
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(idleTimeoutMs)
          ? setTimeout(() => {
              this.waiters.delete(done);
              this.fail(new FerryError('FERRY_IDLE_TIMEOUT', `no answer from the receiver while waiting for ${what}`));
              resolve();
            }, idleTimeoutMs)
          : undefined;
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        this.waiters.add(done);
      });
    }
    if (this.error) throw this.error;
  }
}
