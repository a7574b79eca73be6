// The boot tests' source server on this machine (issue 16): the cached
// Debian image (test/helpers/debian-image.ts) attached READ-ONLY with
// `losetup --read-only --partscan`, its file systems mounted read-only at a
// source root in mount order (/ then /boot; the ESP of the uefi variant stays
// unmounted: this kernel has no vfat, the agent block-copies it), ready for
// `ferry migrate --system --source-root ROOT --source-disk DEVICE`. Also the
// migration itself through real child processes of dist/cli/bin.js. It owns
// its loop device, its mounts and its temp dirs; teardown() undoes them and
// never throws. The cached image is never written. Run under the shared lock.

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runFerry, type RunResult } from './cli.js';
import { startReceiver } from './block.js';
import { sh } from './loop.js';
import { blankImage } from './system-lab.js';
import type { DebianImage } from './debian-image.js';

/** The target's NIC: another MAC than the source's, as in a new cloud. */
export const TARGET_MAC = '52:54:00:fe:00:02';
export const QEMU_DHCP_ADDRESS = /^10\.0\.2\.\d+\/24$/;

export interface AttachedSource {
  root: string;
  device: string;
  teardown(): void;
}

export function attachSource(image: DebianImage, dir: string): AttachedSource {
  const root = join(dir, 'source-root');
  mkdirSync(root, { recursive: true });
  const undo: (() => void)[] = [];
  const teardown = () => {
    for (const step of undo.splice(0).reverse()) {
      try {
        step();
      } catch {
        /* keep going */
      }
    }
  };
  try {
    const device = sh('losetup', ['--find', '--show', '--read-only', '--partscan', image.path]).trim();
    undo.push(() => sh('losetup', ['-d', device]));
    // No udev here: --partscan may attach without creating the nodes; add each by number.
    try {
      sh('partx', ['-u', device]);
    } catch {
      /* partx -a below */
    }
    for (const n of [1, 2, 3, 4]) {
      if (!existsSync(`${device}p${n}`)) sh('partx', ['-a', '-n', `${n}:${n}`, device]);
      for (let i = 0; i < 100 && !existsSync(`${device}p${n}`); i++) sh('sleep', ['0.05']);
    }
    const mount = (part: number, at: string, fsType: string) => {
      mkdirSync(at, { recursive: true });
      sh('mount', ['-t', fsType, '-o', fsType === 'xfs' ? 'ro,norecovery' : 'ro', `${device}p${part}`, at]);
      undo.push(() => {
        try {
          sh('umount', [at]);
        } catch {
          sh('umount', ['-l', at]);
        }
      });
    };
    mount(3, root, 'xfs');
    mount(2, join(root, 'boot'), 'ext4');
    return { root, device, teardown };
  } catch (err) {
    teardown();
    throw err;
  }
}

export interface Migrated {
  target: string;
  migrate: RunResult;
  receiverLog: string;
}

/**
 * Migrates the attached source with `ferry migrate --system` onto a blank
 * sparse image of `targetBytes` given to a receiver as `--disk disk0=…`; the
 * receiver is stopped (its mounts and loop devices gone) before this returns.
 */
export async function migrateSystem(src: AttachedSource, dir: string, mode: 'file' | 'block', targetBytes: number): Promise<Migrated> {
  const target = blankImage(join(dir, 'target'), 'disk0', targetBytes);
  const recv = await startReceiver(join(dir, 'recv'), [], ['--disk', `disk0=${target}`]);
  try {
    const { port, token, fingerprint } = recv.info;
    const migrate = await runFerry(
      ['migrate', '--to', `127.0.0.1:${port}`, '--token', token, '--fingerprint', fingerprint, '--system', '--mode', mode, '--source-root', src.root, '--source-disk', src.device, '--json'],
      { timeoutMs: 15 * 60_000 },
    );
    return { target, migrate, receiverLog: recv.stderr() };
  } finally {
    await recv.stop();
  }
}
