// Where the receiver puts each partition of a layout disk, and how many bytes
// a disk needs for it: the one placement rule validate.ts checks, plan.ts
// sizes with, and the receiver's partitioner writes (so all three agree).
// Pure arithmetic; it throws nothing (validate.ts turns what it reports into
// errors).
//
// The rule, as sfdisk does it with its default 1 MiB alignment:
// - a partition with `startBytes` starts there; any other starts at the
//   first 1 MiB boundary after the previous one (the first at 1 MiB, which
//   also leaves room for GPT's 34 leading sectors);
// - MBR logical partitions live inside their extended partition, each behind
//   its own EBR: the first at the extended start + 1 MiB, the next at the
//   first 1 MiB boundary at least one sector after the previous logical;
// - GPT keeps its backup header and entry array in the last sectors (33 with
//   512-byte sectors: 1 header + 16 KiB of entries).

import type { Disk, FileSystemType, Partition } from './model.js';

export const MIB = 1 << 20;

/** A size in refusals and notes: `1048576 bytes (1.0 MiB)`. */
export const fmtBytes = (n: number): string => `${n} bytes (${(n / MIB).toFixed(1)} MiB)`;
/** Partitions start on 1 MiB boundaries (sfdisk's and parted's default). */
export const ALIGN_BYTES = MIB;

/**
 * The smallest file system each mkfs creates, measured here (2026-12-05,
 * mkfs.xfs 6.1.0, btrfs-progs 6.2, e2fsprogs, mkfs.fat 4.2) by running mkfs
 * on image files of growing size in 1 MiB steps:
 *   xfs 300 MiB (299 refused: "size 299 MB too small, minimum 300MB"),
 *   btrfs 109 MiB (108 refused), ext2/3/4 1 MiB, vfat 1 MiB (FAT12; FAT32
 *   from 8 MiB), swap 40 KiB (mkswap's 10 pages; we ask for 1 MiB).
 */
export const FS_MIN_BYTES: Record<FileSystemType, number> = {
  xfs: 300 * MIB,
  btrfs: 109 * MIB,
  ext2: 1 * MIB,
  ext3: 1 * MIB,
  ext4: 1 * MIB,
  vfat: 1 * MIB,
  swap: 1 * MIB,
};

/** MBR types of an extended (container) partition. */
export const EXTENDED_TYPES = new Set(['5', '05', 'f', '0f', '85']);
export const isExtended = (p: Pick<Partition, 'type'>): boolean => EXTENDED_TYPES.has(p.type.toLowerCase());

export const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
export const alignDown = (n: number, a: number): number => Math.floor(n / a) * a;

/** Bytes GPT keeps at the end of the disk: backup header + entry array (128 × 128 bytes). */
export function gptTailBytes(sectorBytes: number): number {
  return sectorBytes + alignUp(128 * 128, sectorBytes);
}

export interface PlacedPartition {
  id: string;
  number: number;
  startBytes: number;
  sizeBytes: number;
  /** End (exclusive). */
  endBytes: number;
  logical: boolean;
}

export interface Placement {
  partitions: PlacedPartition[];
  /** Bytes the disk must have: the end of the last partition, plus GPT's tail. */
  neededBytes: number;
  /** What is wrong with the geometry (overlaps, a logical past its extended), empty when none. */
  problems: string[];
}

/**
 * Places every partition of `disk` by the rule above. Partitions with a
 * `startBytes` may be in any physical order (numbers need not follow the
 * disk); overlaps are found by sorting, each logical partition must leave a
 * sector for its EBR and stay inside its extended partition.
 */
export function placePartitions(disk: Pick<Disk, 'name' | 'table' | 'partitions'>, sectorBytes: number): Placement {
  const out: PlacedPartition[] = [];
  const problems: string[] = [];
  const firstUsable = disk.table === 'gpt' ? 34 * sectorBytes : sectorBytes;
  const placed = (p: Partition, start: number): PlacedPartition => {
    const x = { id: p.id, number: p.number, startBytes: start, sizeBytes: p.sizeBytes, endBytes: start + p.sizeBytes, logical: p.logical };
    out.push(x);
    return x;
  };
  const primaries = disk.partitions.filter((p) => !p.logical);
  const logicals = disk.partitions.filter((p) => p.logical);
  let cursor = ALIGN_BYTES;
  for (const p of primaries) {
    const ext = placed(p, p.startBytes ?? alignUp(cursor, ALIGN_BYTES));
    cursor = Math.max(cursor, ext.endBytes);
    if (disk.table !== 'dos' || !isExtended(p)) continue;
    const inside: PlacedPartition[] = [];
    let lcur = ext.startBytes;
    for (const l of logicals) {
      const lp = placed(l, l.startBytes ?? alignUp(lcur + sectorBytes, ALIGN_BYTES));
      inside.push(lp);
      lcur = Math.max(lcur, lp.endBytes);
      if (lp.endBytes > ext.endBytes || lp.startBytes < ext.startBytes + sectorBytes) {
        problems.push(
          `logical partition ${l.id} (bytes ${lp.startBytes}–${lp.endBytes}) is not inside its extended partition ${p.id} (bytes ${ext.startBytes}–${ext.endBytes}): ` +
            `the extended partition needs ${lp.endBytes - ext.startBytes} bytes (each logical costs a 1 MiB-aligned EBR)`,
        );
      }
    }
    overlaps(inside, ext.startBytes + sectorBytes, sectorBytes, problems);
  }
  overlaps(out.filter((x) => !x.logical), firstUsable, 0, problems);
  const end = out.reduce((m, p) => Math.max(m, p.endBytes), ALIGN_BYTES);
  return { partitions: out, neededBytes: end + (disk.table === 'gpt' ? gptTailBytes(sectorBytes) : 0), problems };
}

/** Sorted by start, each partition must begin at or after `floor`, and `gap` bytes after the previous one's end. */
function overlaps(parts: PlacedPartition[], floor: number, gap: number, problems: string[]): void {
  let prev: PlacedPartition | undefined;
  for (const p of [...parts].sort((a, b) => a.startBytes - b.startBytes)) {
    const min = prev ? prev.endBytes + gap : floor;
    if (p.startBytes < min) {
      problems.push(
        prev
          ? `partition ${p.id} starts at byte ${p.startBytes}, inside partition ${prev.id} (bytes ${prev.startBytes}–${prev.endBytes}${gap ? ' and its EBR' : ''}): they overlap`
          : `partition ${p.id} starts at byte ${p.startBytes}, before byte ${floor}, the first the partition table leaves free`,
      );
    }
    if (!prev || p.endBytes > prev.endBytes) prev = p;
  }
}

/** The smallest extended partition that holds these logical partitions placed by the rule above. */
export function extendedBytesFor(logicalSizes: readonly number[], sectorBytes = 512): number {
  let cur = 0;
  for (const s of logicalSizes) cur = alignUp(cur + sectorBytes, ALIGN_BYTES) + s;
  return alignUp(Math.max(cur, ALIGN_BYTES), sectorBytes);
}
