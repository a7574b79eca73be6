// Keeps a file pass from failing with ENOSPC on a target that has room for
// its data. Owns only the decision to flush the target's file system (and
// the flush); knows nothing of tar or sessions.
//
// Why (measured 2026-12-06, test/bench/system.mjs and by hand): while
// written data is still in the page cache, xfs counts worst-case space for
// each delayed allocation as used. Copying /usr/share/doc and
// /usr/share/man (232 MB in 48,000 entries) into a fresh 700 MiB xfs took
// its used space to 593 MB with tar and to 563 MB with ferry, 423 MB when
// the copy ended and 284 MB after `sync -f`. A data write that meets ENOSPC
// makes xfs flush and retry by itself; a create, symlink or rename does
// not, and fails. On the whole-server bench ferry's `/` failed that way in
// 2 of 5 runs on main this morning, and on the build before it too
// ("ENOSPC: no space left on device, symlink …", reported as SMS.1315),
// with 180 MB of files on a 667 MB file system. So: the
// extractor reports what it writes; every MiB or 64 entries this looks at
// the file system's free space, and when it falls under the margin starts
// one flush (syncfs through `sync -f`; Node has no syncfs), which gives the
// reserved space back; should the space fall under half the margin while it
// runs, the extractor waits for it. A target that really is full flushes at most once
// per margin/4 bytes written and then fails with SMS.1315 as before.

import { statfsSync } from 'node:fs';
import { errorMessage } from '../errors/ferry-error.js';
import { syncFileSystem } from '../platform/sync-fs.js';
import type { Logger } from '../platform/log.js';

/**
 * Free space under which the target is flushed: 128 MiB or 10 % of the file
 * system, whichever is more. (64 MiB or 5 % was too late: on the
 * whole-server bench, 2 of 7 runs of a receiver that no longer forked for
 * its commits went from 64 MiB free to ENOSPC on a symlink in 0.3 s, while
 * the flush ran.)
 */
export function defaultMargin(totalBytes: number): number {
  return Math.max(128 * 1024 * 1024, Math.floor(totalBytes * 0.1));
}

const CHECK_BYTES = 1024 * 1024;
const CHECK_ENTRIES = 64;

export class LowSpaceFlush {
  /** Flushes started so far. */
  flushes = 0;
  /** Times the extractor was told to wait for a flush (the space fell under half the margin while it ran); for the tests and logs. */
  waits = 0;
  /**
   * The space available to unprivileged users at the last look (statfs f_bavail; before the first look, what the
   * owner's own look gave, if any; undefined without statfs). The extractor seeds and reads it (its btrfs decision);
   * on btrfs f_bfree also counts unused metadata.
   */
  avail: number | undefined;
  private margin: number | undefined;
  private bytes = 0;
  private entries = 0;
  private checkedAt = { bytes: 0, entries: 0 };
  private flushedAt = -Infinity;
  private running: Promise<void> | undefined;
  private broken = false;

  private readonly root = typeof process.geteuid === 'function' && process.geteuid() === 0;

  /** `path`: a directory of the target file system; `name`: the target as logs name it; `marginBytes`: see defaultMargin (for tests). */
  constructor(
    private readonly path: string,
    private readonly name: string,
    private readonly log?: Logger,
    marginBytes?: number,
  ) {
    this.margin = marginBytes;
  }

  /**
   * The extractor wrote `bytes` more and finished `entries` more entries.
   * Returns the flush in progress when the free space fell under half the
   * margin meanwhile: the extractor waits for it before it writes more (the
   * flush gives reserved space back; creating faster than it can ends in
   * ENOSPC on a create, symlink or rename).
   */
  note(bytes: number, entries: number): Promise<void> | undefined {
    this.bytes += bytes;
    this.entries += entries;
    if (this.broken) return undefined;
    if (this.bytes - this.checkedAt.bytes < CHECK_BYTES && this.entries - this.checkedAt.entries < CHECK_ENTRIES) return undefined;
    this.checkedAt = { bytes: this.bytes, entries: this.entries };
    let free: number;
    let total: number;
    try {
      const s = statfsSync(this.path);
      // Root (the receiver, as a rule) may also use the blocks ext4 reserves for it: only their end is short.
      free = (this.root ? s.bfree : s.bavail) * s.bsize;
      total = s.blocks * s.bsize;
      this.avail = s.bavail * s.bsize;
    } catch {
      this.broken = true; // no statfs here: nothing to decide on
      return undefined;
    }
    const margin = (this.margin ??= defaultMargin(total));
    if (this.running) {
      if (free >= margin / 2) return undefined;
      this.waits++;
      return this.running;
    }
    if (free >= margin || this.bytes - this.flushedAt < margin / 4) return undefined;
    this.flushedAt = this.bytes;
    this.flushes++;
    const mib = (n: number) => `${Math.round(n / 1048576)} MiB`;
    const record = { target: this.name, free: mib(free), total: mib(total), flushes: this.flushes };
    if (this.flushes === 1) this.log?.info(record, 'the target file system is low on free space: flushing it to release space held for data not yet written out');
    else this.log?.debug(record, 'flushing the target file system again');
    this.running = syncFileSystem(this.path, 10 * 60_000)
      .then(
        () => undefined,
        (e: unknown) => {
          this.broken = true;
          this.log?.warn({ target: this.name, err: errorMessage(e) }, 'could not flush the target file system');
        },
      )
      .finally(() => (this.running = undefined));
    return undefined;
  }

  /** Waits for a flush in progress, if any (a pass that ended well; a failed one does not wait). */
  async settle(): Promise<void> {
    await this.running;
  }
}
