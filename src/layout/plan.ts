// The agent's default target layout: the source's own layout, disk for disk,
// fitted onto the receiver's disks (same names). A larger disk grows the last
// growable partition; a smaller one, at file level, shrinks file systems
// toward their used space plus the margin (validate.ts) in proportion to
// their slack; block level never shrinks. Also the whole-disk test the copy
// uses and the layout hash the receiver's idempotence check compares.
// Pure: no I/O; refusals are FerryErrors with the figures.

import { createHash } from 'node:crypto';
import { FerryError } from '../errors/ferry-error.js';
import { fmtBytes as fmt, MIB, alignDown, alignUp, extendedBytesFor, isExtended, placePartitions } from './geometry.js';
import type { CopyMode, Disk, Layout, Partition } from './model.js';
import type { SystemDisk } from './system-session.js';
import { isBlockCopied, minimumFileLevelBytes } from './validate.js';

/** The file systems ferry grows to a larger partition (receiver/system/grow.ts). */
export const GROWABLE: ReadonlySet<string> = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs']);

const isGrowable = (p: Partition): boolean => p.content.kind === 'filesystem' && GROWABLE.has(p.content.fsType);

export function planTargetLayout(source: Layout, disks: SystemDisk[], mode: CopyMode): Layout {
  const copy = structuredClone(source);
  for (const lv of copy.volumeGroups.flatMap((v) => v.logicalVolumes)) lv.sourceSizeBytes ??= lv.sizeBytes;
  copy.disks = copy.disks.map((disk) => {
    const target = disks.find((d) => d.name === disk.name);
    if (!target) {
      throw new FerryError(
        'SMS.0411',
        `the source has disk ${disk.name} (${disk.sourceDevice || 'unknown device'}), the receiver has no disk of that name (it has ${disks.map((d) => d.name).join(', ') || 'none'})`,
      );
    }
    return planDisk(disk, target, mode);
  });
  return copy;
}

function planDisk(source: Disk, target: SystemDisk, mode: CopyMode): Disk {
  const disk: Disk = structuredClone(source);
  for (const p of disk.partitions) p.sourceSizeBytes ??= p.sizeBytes;
  const sector = target.sectorBytes;
  if (mode === 'block') {
    const needed = placePartitions(disk, sector).neededBytes;
    if (needed > target.sizeBytes) {
      throw new FerryError(
        'SMS.1315',
        `disk ${disk.name}: its partitions end at ${fmt(needed)} on the source, the target disk has ${fmt(target.sizeBytes)}; ` +
          `a block-level copy never shrinks a partition (migrate at file level to shrink file systems to their used space)`,
      );
    }
    growLastInPlace(disk, target);
    return disk;
  }
  // File level: the receiver places partitions one after the other.
  for (const p of disk.partitions) delete p.startBytes;
  const needed = placePartitions(disk, sector).neededBytes;
  if (needed > target.sizeBytes) shrinkToFit(disk, target, needed);
  growLast(disk, target);
  return disk;
}

/** Sets an MBR extended partition to the size its logical partitions need (file level, after a shrink). */
function tightenExtended(disk: Disk, sector: number): void {
  if (disk.table !== 'dos') return;
  const ext = disk.partitions.find((p) => !p.logical && isExtended(p));
  if (!ext) return;
  ext.sizeBytes = extendedBytesFor(disk.partitions.filter((p) => p.logical).map((p) => p.sizeBytes), sector);
}

function shrinkToFit(disk: Disk, target: SystemDisk, needed: number): void {
  const sector = target.sectorBytes;
  const slackOf = (p: Partition) =>
    p.content.kind === 'filesystem' && !isBlockCopied(p.content, 'file') ? Math.max(0, alignDown(p.sizeBytes - alignUp(minimumFileLevelBytes(p.content), MIB), MIB)) : 0;
  const slack = new Map(disk.partitions.map((p) => [p, slackOf(p)]));
  const total = [...slack.values()].reduce((a, b) => a + b, 0);
  const deficit = needed - target.sizeBytes;
  const tooSmall = (freed: number) =>
    new FerryError(
      'SMS.1315',
      `disk ${disk.name}: the source's partitions need ${fmt(needed)}, the target disk has ${fmt(target.sizeBytes)} (${fmt(deficit)} short); ` +
        `shrinking every file system to its used space plus the margin (max(10 % of used, 64 MiB), at least the file system's minimum) frees only ${fmt(freed)}`,
    );
  if (total < deficit) throw tooSmall(total);
  // Proportional cut first, rounded up to MiB; then whatever rounding and EBRs still need, from the largest slack left.
  for (const [p, s] of slack) {
    if (s === 0) continue;
    const cut = Math.min(s, alignUp(Math.ceil((deficit * s) / total), MIB));
    p.sizeBytes -= cut;
    slack.set(p, s - cut);
  }
  tightenExtended(disk, sector);
  for (let guard = 0; guard < 1024; guard++) {
    const now = placePartitions(disk, sector).neededBytes;
    if (now <= target.sizeBytes) return;
    const [p, s] = [...slack].sort((a, b) => b[1] - a[1])[0] ?? [undefined, 0];
    if (!p || s === 0) throw tooSmall(total);
    const cut = Math.min(s, alignUp(now - target.sizeBytes, MIB));
    p.sizeBytes -= cut;
    slack.set(p, s - cut);
    tightenExtended(disk, sector);
  }
  throw tooSmall(total);
}

/** File level: the last growable partition in table order takes the free space (and its extended partition with it). */
function growLast(disk: Disk, target: SystemDisk): void {
  const sector = target.sectorBytes;
  const free = alignDown(target.sizeBytes - placePartitions(disk, sector).neededBytes, MIB);
  if (free <= 0) return;
  const order = [...disk.partitions.filter((p) => !p.logical)].flatMap((p) =>
    disk.table === 'dos' && isExtended(p) ? [p, ...disk.partitions.filter((l) => l.logical)] : [p],
  );
  const last = [...order].reverse().find(isGrowable);
  if (!last) return;
  last.sizeBytes += free;
  if (last.logical) {
    const ext = disk.partitions.find((p) => !p.logical && isExtended(p));
    if (ext) ext.sizeBytes += free;
  }
}

/** Block level: only the partition that ends last may grow, in place (every start kept: the whole disk can still be copied). */
function growLastInPlace(disk: Disk, target: SystemDisk): void {
  const sector = target.sectorBytes;
  const placed = placePartitions(disk, sector);
  const free = alignDown(target.sizeBytes - placed.neededBytes, MIB);
  // Keep every start where discovery found it (or where the rule puts it).
  for (const p of disk.partitions) p.startBytes ??= placed.partitions.find((x) => x.id === p.id)!.startBytes;
  if (free <= 0) return;
  const end = Math.max(...placed.partitions.map((p) => p.endBytes));
  const atEnd = disk.partitions.filter((p) => placed.partitions.find((x) => x.id === p.id)!.endBytes === end);
  const grown = atEnd.find((p) => !isExtended(p) || disk.table !== 'dos');
  if (!grown || !isGrowable(grown)) return;
  for (const p of atEnd) p.sizeBytes += free;
}

/**
 * Whether a block copy may copy `source` disk whole onto `target`: same table,
 * every source partition kept with its number, start and size, only those
 * ending last on the source larger (grown after the copy), and a target disk
 * at least the source disk's size.
 */
export function isWholeDiskCopy(source: Disk, target: Disk, targetDiskBytes = target.sizeBytes): boolean {
  if (source.table !== target.table || source.partitions.length !== target.partitions.length) return false;
  if (targetDiskBytes < source.sizeBytes) return false;
  const srcEnd = Math.max(0, ...source.partitions.map((p) => (p.startBytes ?? -Infinity) + p.sizeBytes));
  for (const s of source.partitions) {
    const t = target.partitions.find((p) => p.id === s.id);
    if (!t || s.startBytes === undefined || t.startBytes !== s.startBytes || t.number !== s.number || t.logical !== s.logical) return false;
    if (t.sizeBytes === s.sizeBytes) continue;
    if (t.sizeBytes < s.sizeBytes || s.startBytes + s.sizeBytes !== srcEnd) return false;
  }
  return true;
}

/** Keys left out of the hash: where the source's volumes are, and how full they are, change between passes without changing the layout. */
const UNHASHED = new Set(['sourceDevice', 'usedBytes']);

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (!UNHASHED.has(k) && x !== undefined) out[k] = canonical(x);
    }
    return out;
  }
  return v;
}

/** sha256 (hex) of the layout's canonical JSON (sorted keys, without sourceDevice and usedBytes). */
export function layoutHash(layout: Layout): string {
  return createHash('sha256').update(JSON.stringify(canonical(layout))).digest('hex');
}
