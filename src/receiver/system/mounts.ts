// The mounts a system session makes under DATA/systems/ID/ (the target tree,
// each Btrfs top level, file systems with no mount point), kept as a stack and
// unmounted in reverse order (what sits on a mount first, the rest side by
// side); and, at receiver start, the stale mounts a killed
// receiver left there (deepest first). Must not touch: any mount outside the
// receiver's DATA/systems/.

import { mkdir, readFile, realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import { exec } from '../../platform/exec.js';
import { parseMountinfo } from '../../platform/mountinfo.js';
import { unmountOrDetach } from '../../platform/unmount.js';
import type { Logger } from '../../platform/log.js';
import { mapLimit } from '../../platform/map-limit.js';

export class MountStack {
  private readonly dirs: string[] = [];

  async mount(device: string, dir: string, options: string[] = []): Promise<void> {
    await mkdir(dir, { recursive: true });
    await exec('mount', [...(options.length > 0 ? ['-o', options.join(',')] : []), device, dir], { timeoutMs: 60_000 });
    this.dirs.push(dir);
  }

  /** A non-recursive bind of `src` at `dir`: the file system mounted at `src` alone, without what is mounted below it. */
  async bind(src: string, dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await exec('mount', ['--bind', src, dir], { timeoutMs: 60_000 });
    this.dirs.push(dir);
  }

  get mounted(): readonly string[] {
    return this.dirs;
  }

  /**
   * Unmounts everything, a mount only after every mount made later at or
   * below its directory (unmountWaves), each wave side by side; a busy mount
   * is detached lazily (and logged) so that the rest still goes.
   */
  async unmountAll(log: Logger): Promise<void> {
    for (const wave of unmountWaves(this.dirs.splice(0))) await mapLimit(wave, UNMOUNT_AT_ONCE, (dir) => unmount(dir, log));
  }
}

/** Each umount flushes its file system (xfs, ext4): a few at a time, not one after the other (0.5 s of a whole-server migration's end otherwise). */
const UNMOUNT_AT_ONCE = 4;

/**
 * Mount points in the order they were mounted, as waves to unmount: a
 * mount comes in a wave after every mount made later at or below its
 * directory (what sits on it, or a mount stacked on the same directory).
 */
export function unmountWaves(dirs: readonly string[]): string[][] {
  const waveOf: number[] = new Array(dirs.length);
  for (let i = dirs.length - 1; i >= 0; i--) {
    let w = 0;
    for (let j = i + 1; j < dirs.length; j++) if (dirs[j] === dirs[i] || dirs[j]!.startsWith(`${dirs[i]}${sep}`)) w = Math.max(w, waveOf[j]! + 1);
    waveOf[i] = w;
  }
  const waves: string[][] = [];
  for (let i = dirs.length - 1; i >= 0; i--) (waves[waveOf[i]!] ??= []).push(dirs[i]!);
  return waves;
}

async function unmount(dir: string, log: Logger): Promise<void> {
  await unmountOrDetach(dir, { log }).catch(() => undefined);
}

/** Mount points at or below `base`, from /proc/self/mountinfo, deepest first. */
export async function mountsUnder(base: string): Promise<string[]> {
  const root = await realpath(base).catch(() => base);
  const all = parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8')).map((m) => m.mountPoint);
  return all.filter((m) => m === root || m.startsWith(root + sep)).sort((a, b) => b.split(sep).length - a.split(sep).length || b.length - a.length);
}

/** Unmounts what a killed receiver left under `base` (DATA/systems); returns the mount points it unmounted. */
export async function unmountStale(base: string, log: Logger): Promise<string[]> {
  const stale = await mountsUnder(base);
  for (const m of stale) await unmount(m, log);
  return stale;
}
