// The agent's own read-only mounts of source file systems that the source
// root does not show: a file system that is not mounted (or not where the
// layout says), and every Btrfs top level (subvolid=5), from which each
// subvolume is copied by its path. A file system already mounted elsewhere
// is bind-mounted from there and made read-only (the kernel refuses a
// read-only mount of a device it has mounted read-write: EBUSY); so is one
// mounted where the layout says, since a walk through the source root would
// see the roots of the file systems mounted on its directories instead of
// the directories. Btrfs takes a second, read-only mount of its top level. Mount points are fixed paths under the
// agent's state directory (DIR/mounts/MIGRATION/KEY), not fresh temp names:
// the file engine keys its manifests by the source path, so the same path
// on the next run lets that run be a delta. A mount left behind by a killed
// run is unmounted before its place is used again. Owns those mounts only;
// never touches the source's own mounts.

import { mkdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, errorMessage } from '../errors/ferry-error.js';
import { exec } from '../platform/exec.js';
import { unmountOrDetach } from '../platform/unmount.js';
import type { Logger } from '../platform/log.js';
import { majorMinor } from '../platform/device-size-linux.js';
import { mapLimit } from '../platform/map-limit.js';
import { parseMountinfo } from '../platform/mountinfo.js';

/** Mount points below `dir` in this mount namespace, deepest first. */
function mountsBelow(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return parseMountinfo(text)
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** 'major:minor' of a block device, as /proc/self/mountinfo spells it; undefined when `device` is not one. */
function deviceNumber(device: string): string | undefined {
  try {
    const st = statSync(device);
    return st.isBlockDevice() ? majorMinor(st.rdev) : undefined;
  } catch {
    return undefined;
  }
}

/** A place where the file system on `device` is mounted at its root, if any. */
function mountedAt(device: string): string | undefined {
  const mm = deviceNumber(device);
  if (!mm) return undefined;
  try {
    return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.majorMinor === mm && m.root === '/')?.mountPoint;
  } catch {
    return undefined;
  }
}

/**
 * Whether `path` is where `device`'s file system is mounted: the directory's
 * st_dev is the device's number. (Btrfs mounts show an anonymous st_dev;
 * they never pass, and are always mounted by SourceMounts.)
 */
export function isMountOf(path: string, device: string): boolean {
  try {
    const dev = statSync(device);
    return dev.isBlockDevice() && statSync(path).dev === dev.rdev;
  } catch {
    return false;
  }
}

export class SourceMounts {
  private readonly made = new Map<string, string>();

  constructor(
    /** DIR/mounts/MIGRATION under the agent's state directory. */
    private readonly baseDir: string,
    private readonly log: Logger,
  ) {}

  /** Unmounts whatever a killed run left under the base directory. */
  async clearStale(): Promise<void> {
    for (const m of mountsBelow(this.baseDir)) {
      this.log.warn({ mountPoint: m }, 'unmounting a source mount a previous run left behind');
      await this.unmount(m);
    }
  }

  /**
   * The file system on `device`, on its own and read-only, at the place named
   * `key`; once per run. Where it is mounted already (`prefer` first), a
   * non-recursive bind of that mount: the walk then sees the directories
   * other file systems are mounted on as they are, not the roots of those
   * file systems (whose times and modes would be copied in their place).
   */
  readOnly(device: string, fsType: string, key: string, extra: string[] = [], prefer?: string): Promise<string> {
    // Volumes are copied two at a time: a btrfs top level and its subvolumes ask for the same mount at once.
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.mountOnce(device, fsType, key, extra, prefer);
      this.pending.set(key, pending);
      pending.catch(() => this.pending.delete(key));
    }
    return pending;
  }

  private readonly pending = new Map<string, Promise<string>>();

  private async mountOnce(device: string, fsType: string, key: string, extra: string[], prefer?: string): Promise<string> {
    const known = this.made.get(key);
    if (known) return known;
    if (!device) throw new FerryError('FERRY_PASS_FAILED', `volume ${key}: the source layout names no device to read it from`);
    const dir = join(this.baseDir, key.replace(/[^A-Za-z0-9_.-]/g, '_'));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const m of mountsBelow(dir)) await this.unmount(m);
    const options = ['ro', ...extra].join(',');
    // Btrfs mounts a subvolume (or the top level) read-only beside a read-write mount; the others do not.
    const elsewhere = fsType === 'btrfs' ? undefined : prefer && isMountOf(prefer, device) ? prefer : mountedAt(device);
    try {
      if (elsewhere) {
        await exec('mount', ['--bind', elsewhere, dir], { timeoutMs: 60_000 });
        this.made.set(key, dir);
        await exec('mount', ['-o', 'remount,bind,ro', dir], { timeoutMs: 60_000 });
      } else {
        await exec('mount', ['-t', fsType, '-o', options, device, dir], { timeoutMs: 60_000 });
        this.made.set(key, dir);
      }
    } catch (e) {
      throw new FerryError('FERRY_TOOL_FAILED', `cannot mount the source ${device} (${fsType}) read-only at ${dir}: ${errorMessage(e)}`, { cause: e });
    }
    this.log.info({ device, mountPoint: dir, ...(elsewhere ? { boundFrom: elsewhere } : { options }) }, 'mounted a source file system read-only');
    return dir;
  }

  /** A Btrfs file system's top level (subvolid=5), read-only: every subvolume is a directory below it. */
  btrfsTopLevel(device: string, key: string): Promise<string> {
    return this.readOnly(device, 'btrfs', key, ['subvolid=5']);
  }

  /**
   * Unmounts everything this run mounted; returns what could not be undone
   * (never throws). The mounts are side by side under the base directory,
   * none on another: a few are unmounted at a time.
   */
  async releaseAll(): Promise<string[]> {
    const dirs = [...this.made.values()].reverse();
    const problems = await mapLimit(dirs, 4, async (dir) => {
      try {
        await this.unmount(dir);
        rmdirSync(dir);
        return undefined;
      } catch (e) {
        return `${dir}: ${errorMessage(e)}`;
      }
    });
    this.made.clear();
    return problems.filter((p): p is string => p !== undefined);
  }

  /** Busy (a walker still holds a directory open as the run fails): detached lazily; throws only if that fails too. */
  private unmount(dir: string): Promise<void> {
    return unmountOrDetach(dir, { log: this.log, what: 'umount of a source mount failed; detaching lazily' });
  }
}
