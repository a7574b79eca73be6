// Block devices as sysfs and util-linux show them to the receiver's system
// sessions: a device's MAJ:MIN, its partitions, the name of partition N, the
// kernel's view refreshed after a new table (partx), loop devices over image
// files (losetup). Must not touch: anything but the device it is given.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FerryError } from '../../errors/ferry-error.js';
import { exec } from '../../platform/exec.js';
import { pause } from '../../platform/backoff.js';
import { majorMinor } from '../../platform/device-size-linux.js';

/** MAJ:MIN of a block device node. */
export async function majMinOf(path: string): Promise<string> {
  const st = await stat(path);
  if (!st.isBlockDevice()) throw new FerryError('FERRY_BAD_TARGET', `${path} is not a block device`);
  return majorMinor(st.rdev);
}

/** The kernel's name of partition `n` of `disk`: sdX → sdX1; names ending in a digit (nvme0n1, loop0, mmcblk0) → p1. */
export function partitionDevice(disk: string, n: number): string {
  return /\d$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

/** The partition device nodes the kernel knows of `disk` (/dev/loop3p1 …), from /sys/class/block. */
export function partitionsOf(disk: string): string[] {
  const name = basename(disk);
  const dir = join('/sys/class/block', name);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((e) => e.startsWith(name) && existsSync(join(dir, e, 'partition')))
    .map((e) => join('/dev', e));
}

/** The devices that hold `dev` open as a stacked device (device-mapper, md), from /sys/class/block/NAME/holders. */
export function holdersOf(dev: string): string[] {
  const dir = join('/sys/class/block', basename(dev), 'holders');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Logical sector size of a block device (512 for an image file). */
export function sectorBytesOf(dev: string): number {
  try {
    return Number(readFileSync(join('/sys/class/block', basename(dev), 'queue/logical_block_size'), 'utf8').trim()) || 512;
  } catch {
    return 512;
  }
}

/**
 * Makes the kernel read the new partition table and waits for the partition
 * nodes. Without udev (this machine) `blockdev --rereadpt` may succeed
 * without creating the nodes, so `partx -u` (or `-a`) always follows it.
 */
export async function rereadPartitions(disk: string, numbers: number[]): Promise<void> {
  await exec('blockdev', ['--rereadpt', disk]).catch(() => undefined);
  await exec('partx', ['-u', disk]).catch(() => exec('partx', ['-a', disk]));
  // `partx -u` may miss a partition (a last logical one behind a primary
  // numbered after the extended): those are added one by one.
  for (const n of numbers) if (!existsSync(partitionDevice(disk, n))) await exec('partx', ['-a', '--nr', String(n), disk]).catch(() => undefined);
  for (let i = 0; i < 100; i++) {
    if (numbers.every((n) => existsSync(partitionDevice(disk, n)))) return;
    await pause(50);
  }
  const missing = numbers.filter((n) => !existsSync(partitionDevice(disk, n))).map((n) => partitionDevice(disk, n));
  throw new FerryError('FERRY_LAYOUT_FAILED', `${disk}: partition devices ${missing.join(', ')} did not appear after the new table was written`);
}

/** Loop devices backed by `file` (`losetup -j`). */
export async function loopsBacking(file: string): Promise<string[]> {
  const { stdout } = await exec('losetup', ['-j', file, '-O', 'NAME', '-n']).catch(() => ({ stdout: '' }));
  return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** Attaches an image file as a loop device that shows its partitions. */
export async function attachImage(file: string): Promise<string> {
  const { stdout } = await exec('losetup', ['--find', '--show', '--partscan', file]);
  return stdout.trim();
}

export async function detachLoop(dev: string): Promise<void> {
  await exec('losetup', ['-d', dev]);
}
