// Creating file systems and swap with the source's UUID and label: the mkfs
// command line per type (mkfsCommand, pure), the check that every tool a
// layout needs is installed before anything is written (FERRY_FS_UNSUPPORTED
// naming the type), and running it. Must not touch: anything but the device given.

import { existsSync } from 'node:fs';
import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import { exec, hasTool } from '../../platform/exec.js';
import { layoutVolumes, type Content, type Layout } from '../../layout/model.js';
import { isFsUuid } from '../../layout/validate.js';

type Made = Extract<Content, { kind: 'filesystem' | 'swap' }>;

/** The program and arguments that create `c` on `device`. */
export function mkfsCommand(c: Made, device: string): [string, string[]] {
  const uuid = c.uuid;
  const label = c.label;
  if (c.kind === 'swap') return ['mkswap', [...(uuid ? ['-U', uuid] : []), ...(label ? ['-L', label] : []), device]];
  switch (c.fsType) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      return [`mkfs.${c.fsType}`, ['-F', '-q', ...(uuid ? ['-U', uuid] : []), ...(label ? ['-L', label] : []), device]];
    case 'xfs':
      return ['mkfs.xfs', ['-f', '-q', ...(uuid ? ['-m', `uuid=${uuid}`] : []), ...(label ? ['-L', label] : []), device]];
    case 'btrfs':
      return ['mkfs.btrfs', ['-f', '-q', ...(uuid ? ['-U', uuid] : []), ...(label ? ['-L', label] : []), device]];
    case 'vfat':
      // A vfat "UUID" is its volume id, 'ABCD-1234'; mkfs.vfat -i wants the 8 hex digits.
      return ['mkfs.vfat', [...(uuid ? ['-i', uuid.replace('-', '')] : []), ...(label ? ['-n', label] : []), device]];
  }
}

/**
 * The UUID `c` was made with, when the command line gave it and the tool
 * makes exactly that or fails: mke2fs -U, mkfs.xfs -m uuid= and mkfs.btrfs
 * -U, with a UUID in the form the layout's validation admits (never
 * mke2fs's `random`, `time` or `clear`), as blkid prints it (lower case).
 * Undefined, to read it back with blkid: vfat's volume id; swap (an mkswap
 * built without libuuid warns, ignores -U and exits 0); the nil UUID (the
 * tools take it, blkid then shows none, and recognition compares with what
 * blkid shows); no UUID given; a btrfs made with a new one.
 */
export function uuidGiven(c: Made, uuidReplaced: boolean): string | undefined {
  if (uuidReplaced || c.kind !== 'filesystem' || c.fsType === 'vfat') return undefined;
  if (!isFsUuid(c.uuid) || /^[0-]+$/.test(c.uuid)) return undefined;
  return c.uuid.toLowerCase();
}

function madeContents(layout: Layout): Made[] {
  const all = layoutVolumes(layout).map((v) => v.content);
  return all.filter((c): c is Made => c.kind === 'filesystem' || c.kind === 'swap');
}

/** Refuses (FERRY_FS_UNSUPPORTED) a layout whose file systems this machine has no tool to create. */
export async function assertFormatTools(layout: Layout): Promise<void> {
  for (const c of madeContents(layout)) {
    const [tool] = mkfsCommand(c, '/dev/null');
    const type = c.kind === 'swap' ? 'swap' : c.fsType;
    if (!(await hasTool(tool))) throw new FerryError('FERRY_FS_UNSUPPORTED', `file system type ${type} cannot be created on this receiver: ${tool} is not installed`);
    if (c.kind === 'filesystem' && c.fsType === 'btrfs' && c.subvolumes.length > 0 && !(await hasTool('btrfs'))) {
      throw new FerryError('FERRY_FS_UNSUPPORTED', 'btrfs subvolumes cannot be created on this receiver: the btrfs program is not installed');
    }
  }
}

/** A btrfs with this UUID is mounted on this machine (the kernel lists each mounted one under /sys/fs/btrfs/FSID). */
function btrfsMounted(uuid: string): boolean {
  return /^[0-9a-f-]{36}$/i.test(uuid) && existsSync(`/sys/fs/btrfs/${uuid.toLowerCase()}`);
}

/**
 * Creates `c` on `device`. mkfs.btrfs refuses a UUID that another btrfs
 * visible on this machine has, which happens only when the receiver runs
 * beside the source (labs, tests): then the file system gets a new UUID and
 * the caller is told (`uuidReplaced`), to say so in the reply's notes. A
 * mounted one is seen before mkfs runs (a refused mkfs.btrfs costs 0.1–0.2 s
 * of the layout step); one that is only present is found by mkfs's refusal.
 */
export async function makeFileSystem(c: Made, device: string): Promise<{ uuidReplaced: boolean }> {
  if (c.kind === 'filesystem' && c.fsType === 'btrfs' && c.uuid && btrfsMounted(c.uuid)) {
    const [tool, args] = mkfsCommand({ ...c, uuid: '' }, device);
    await exec(tool, args, { timeoutMs: 300_000 });
    return { uuidReplaced: true };
  }
  const [tool, args] = mkfsCommand(c, device);
  try {
    await exec(tool, args, { timeoutMs: 300_000 });
    return { uuidReplaced: false };
  } catch (e) {
    if (!(c.kind === 'filesystem' && c.fsType === 'btrfs' && c.uuid && /non-unique UUID/.test(errorMessage(e)))) throw e;
    const [again, fresh] = mkfsCommand({ ...c, uuid: '' }, device);
    await exec(again, fresh, { timeoutMs: 300_000 });
    return { uuidReplaced: true };
  }
}
