// The whole disks a receiver was given (`ferry receive --disk NAME=DEVICE`):
// block devices, or image files (tests, labs) attached as loop devices while a
// system session uses them. Owns parsing the flag, sizing the disks for
// WELCOME, and attaching/detaching image files; nothing else.

import { realpathSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FerryError, UsageError } from '../../errors/ferry-error.js';
import { sizeOfPath } from '../../platform/device-size-linux.js';
import type { SystemDisk } from '../../layout/system-session.js';
import { attachImage, detachLoop, sectorBytesOf } from './block-devices.js';

export interface DiskSpec {
  name: string;
  /** A block device or an image file. */
  path: string;
}

/** A disk opened for a session: `device` is the block device (a loop device over an image file). */
export interface OpenDisk extends DiskSpec {
  device: string;
  /** This session attached the loop device (it detaches it at the end). */
  attached: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function parseDisk(spec: string): DiskSpec {
  const i = spec.indexOf('=');
  if (i <= 0 || i === spec.length - 1) throw new UsageError(`--disk wants NAME=DEVICE, got '${spec}'`);
  const name = spec.slice(0, i);
  if (!NAME.test(name)) throw new UsageError(`disk name '${name}' may hold letters, digits, '_', '.', '-' only (64 at most)`);
  // The device's own node (/dev/disk/by-id/… → /dev/sdb): partitions, holders
  // and sector size are looked up in sysfs by the kernel's name.
  const path = resolve(spec.slice(i + 1));
  try {
    return { name, path: realpathSync(path) };
  } catch {
    return { name, path }; // not there: describeDisk says so when the receiver starts
  }
}

export async function describeDisk(d: DiskSpec): Promise<SystemDisk> {
  try {
    const st = await stat(d.path);
    return { name: d.name, sizeBytes: await sizeOfPath(d.path, st), sectorBytes: st.isBlockDevice() ? sectorBytesOf(d.path) : 512 };
  } catch (e) {
    throw new FerryError('FERRY_BAD_TARGET', `disk ${d.name} (${d.path}) cannot be read: ${(e as Error).message}`);
  }
}

export async function isImageFile(d: DiskSpec): Promise<boolean> {
  return (await stat(d.path)).isFile();
}

export async function openDisk(d: DiskSpec): Promise<OpenDisk> {
  if (await isImageFile(d)) return { ...d, device: await attachImage(d.path), attached: true };
  return { ...d, device: d.path, attached: false };
}

export async function closeDisk(d: OpenDisk): Promise<void> {
  if (d.attached) await detachLoop(d.device);
}
