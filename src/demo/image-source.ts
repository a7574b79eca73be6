// A server image (server-image.ts) as a migration source on this machine:
// attached READ-ONLY with `losetup --read-only --partscan`, its file systems
// mounted read-only at a source root in mount order (/ from partition 3,
// /boot from partition 2; the ESP of the uefi variant stays unmounted: this
// kernel may have no vfat, and the agent block-copies ESPs), ready for
// `ferry migrate --system --source-root ROOT --source-disk DEVICE`. Used by
// `ferry demo --system` and the boot tests. Owns its loop device and mounts;
// detach() undoes them and never throws. The image is never written, unless
// the caller asks for a writable attachment of an image of its own (a test
// that changes its source between passes works on a copy of the cached image).

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../platform/exec.js';
import { unmountOrDetach } from '../platform/unmount.js';

export interface ImageSource {
  /** Pass as --source-root. */
  root: string;
  /** The loop device: pass as --source-disk. */
  device: string;
  /** Unmounts and detaches; never throws; idempotent. */
  detach(): Promise<void>;
}

export interface AttachOptions {
  /** Attach and mount read-write (default false). Never for a cached image: only for a copy the caller owns. */
  writable?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function attachImageSource(image: string, root: string, options: AttachOptions = {}): Promise<ImageSource> {
  const writable = options.writable === true;
  const undo: (() => Promise<unknown>)[] = [];
  const detach = async () => {
    for (const step of undo.splice(0).reverse()) {
      try {
        await step();
      } catch {
        /* keep going: the rest must still be undone */
      }
    }
  };
  try {
    const device = (await exec('losetup', ['--find', '--show', ...(writable ? [] : ['--read-only']), '--partscan', image])).stdout.trim();
    undo.push(() => exec('losetup', ['-d', device]));
    // Without udev, --partscan may attach without creating the partition nodes: partx adds them.
    await exec('partx', ['-u', device]).catch(() => undefined);
    for (const n of [1, 2, 3, 4]) {
      if (!existsSync(`${device}p${n}`)) await exec('partx', ['-a', '-n', `${n}:${n}`, device]);
      for (let i = 0; i < 100 && !existsSync(`${device}p${n}`); i++) await sleep(50);
    }
    const mount = async (part: number, at: string, fsType: string) => {
      await mkdir(at, { recursive: true });
      // norecovery: a read-only device cannot replay an xfs log (the image was unmounted cleanly anyway).
      const opts = writable ? 'rw' : fsType === 'xfs' ? 'ro,norecovery' : 'ro';
      await exec('mount', ['-t', fsType, '-o', opts, `${device}p${part}`, at]);
      undo.push(() => unmountOrDetach(at));
    };
    await mount(3, root, 'xfs');
    await mount(2, join(root, 'boot'), 'ext4');
    return { root, device, detach };
  } catch (err) {
    await detach();
    throw err;
  }
}
