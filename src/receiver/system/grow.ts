// After a block volume is copied into a larger target ('volume-done'): grow
// what the copy brought to the target's size. A whole disk: the GPT backup
// header moved to the disk's end (sfdisk --relocate gpt-bak-std), the last
// partition grown to the end (sfdisk -N; an MBR logical one after its
// extended partition), the kernel told, then its file system. A partition: its file system (ext*: e2fsck -fy then resize2fs; xfs:
// xfs_growfs on a temporary mount; btrfs: `btrfs filesystem resize max` on a
// temporary mount). File volumes need nothing. Returns the actions taken, one
// line each, for the reply.

import { mkdir, rmdir } from 'node:fs/promises';
import { exec } from '../../platform/exec.js';
import { unmountOrDetach } from '../../platform/unmount.js';
import { isExtended } from '../../layout/geometry.js';
import { GROWABLE } from '../../layout/plan.js';
import { partitionDevice, rereadPartitions } from './block-devices.js';
import type { ServedVolume } from './volumes.js';

const LONG = 3_600_000;

async function fsTypeOn(device: string): Promise<string> {
  const r = await exec('blkid', ['-p', '-s', 'TYPE', '-o', 'value', device], { okCodes: [0, 2] });
  return r.stdout.trim();
}

async function onTemporaryMount(device: string, dir: string, options: string[], run: (dir: string) => Promise<unknown>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await exec('mount', [...(options.length ? ['-o', options.join(',')] : []), device, dir], { timeoutMs: 60_000 });
  try {
    await run(dir);
  } finally {
    await unmountOrDetach(dir);
    await rmdir(dir).catch(() => undefined);
  }
}

/** Grows the file system on `device` to its partition; returns what was done ('' types: nothing). */
export async function growFileSystem(device: string, tmpDir: string): Promise<string[]> {
  const type = await fsTypeOn(device);
  switch (type) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      // e2fsck exits 1 when it fixed something: resize2fs still wants a freshly checked file system.
      await exec('e2fsck', ['-f', '-y', device], { okCodes: [0, 1], timeoutMs: LONG });
      await exec('resize2fs', [device], { timeoutMs: LONG });
      return [`${type} on ${device} grown to its partition (e2fsck -fy, resize2fs)`];
    case 'xfs':
      await onTemporaryMount(device, tmpDir, ['nouuid'], (dir) => exec('xfs_growfs', [dir], { timeoutMs: LONG }));
      return [`xfs on ${device} grown to its partition (xfs_growfs)`];
    case 'btrfs':
      await onTemporaryMount(device, tmpDir, [], (dir) => exec('btrfs', ['filesystem', 'resize', 'max', dir], { timeoutMs: LONG }));
      return [`btrfs on ${device} grown to its partition (btrfs filesystem resize max)`];
    default:
      return [];
  }
}

interface SfdiskPartition {
  node: string;
  start: number;
  type: string;
}

const numberOf = (p: SfdiskPartition) => Number(/(\d+)$/.exec(p.node)![1]);

async function growToEnd(dev: string, n: number): Promise<void> {
  await exec('sfdisk', ['--no-reread', '--no-tell-kernel', '-N', String(n), dev], { input: ', +\n' });
}

export async function growVolume(v: ServedVolume, tmpDir: string): Promise<string[]> {
  if (v.volume.kind === 'file') return [];
  if (!v.volume.wholeDisk || !v.disk) {
    // Only these are ever grown; the layout names what the copy brought (the same bytes discovery probed). Asking
    // blkid about an ESP or a BIOS boot partition forked the receiver mid-copy for nothing (platform/sync-fs.ts on why that is dear).
    if (!GROWABLE.has(v.volume.fsType)) return [];
    return growFileSystem(v.device, tmpDir);
  }
  const dev = v.device;
  if (v.volume.sizeBytes <= v.disk.sizeBytes) return [];
  const actions: string[] = [];
  if (v.disk.table === 'gpt') {
    await exec('sfdisk', ['--relocate', 'gpt-bak-std', dev]);
    actions.push(`GPT backup header of ${dev} moved to the end of the disk`);
  }
  const json = JSON.parse((await exec('sfdisk', ['--json', dev])).stdout) as { partitiontable: { partitions?: SfdiskPartition[] } };
  const parts = json.partitiontable.partitions ?? [];
  const last = [...parts].filter((p) => !(v.disk!.table === 'dos' && isExtended(p))).sort((a, b) => b.start - a.start)[0];
  if (!last) return actions;
  const n = numberOf(last);
  // A last logical partition grows inside its extended one, which grows first.
  const extended = v.disk.table === 'dos' && n > 4 ? parts.find((p) => isExtended(p)) : undefined;
  if (extended) {
    await growToEnd(dev, numberOf(extended));
    actions.push(`extended partition ${numberOf(extended)} of ${dev} grown to the end of the disk`);
  }
  await growToEnd(dev, n);
  await rereadPartitions(dev, [n]);
  actions.push(`partition ${n} of ${dev} grown to the end of the disk`);
  return [...actions, ...(await growFileSystem(partitionDevice(dev, n), tmpDir))];
}
