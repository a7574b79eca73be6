// The whole-server layout: what a receiver is asked to lay out on its blank
// target disks (partition tables, partitions, file systems, swap, Btrfs
// subvolumes, LVM volume groups) and what it answers it made. Both ends share
// it: the agent builds one from the source (discovery/linux/source-layout.ts)
// or from a task's `target_server` (sms-mapping.ts), the receiver checks it
// (validate.ts), flattens LVM where it has no device-mapper (flatten-lvm.ts)
// and carries it out (receiver/system/). Pure data and zod schemas: no I/O.
//
// Sizes and offsets are bytes. A partition's `startBytes` is kept only where
// the copy depends on it (a whole-disk block copy keeps the source's geometry);
// elsewhere the receiver places partitions one after the other, 1 MiB aligned.

import { z } from 'zod';

export const LAYOUT_VERSION = 1;

/** File systems the receiver can create (mkfs.*, mkswap). */
export const FILE_SYSTEMS = ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat', 'swap'] as const;
export const FileSystemType = z.enum(FILE_SYSTEMS);
export type FileSystemType = z.infer<typeof FileSystemType>;

/** Partition table styles, spelt as sfdisk spells them (`dos` is MBR). */
export const TableType = z.enum(['gpt', 'dos']);
export type TableType = z.infer<typeof TableType>;

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, _ . - (max 64)');
const bytes = z.number().int().nonnegative();

export const BtrfsSubvolumeSchema = z.object({
  /** Path below the top level, e.g. '@', '@home', '@/var/lib/portables'. Parents come first in the list. */
  path: z.string().min(1).max(4096),
  /** The source's read-only snapshots become ordinary (writable) subvolumes on the target. */
  readOnlyOnSource: z.boolean().default(false),
  /** Where the source mounts this subvolume ('' when it does not). */
  mountPoint: z.string().max(4096).default(''),
});
export type BtrfsSubvolume = z.infer<typeof BtrfsSubvolumeSchema>;

/** What a partition (or a logical volume) holds. */
export const ContentSchema = z.discriminatedUnion('kind', [
  /** Nothing to create: a BIOS boot partition, an MBR extended partition, an unformatted or unknown partition. */
  z.object({ kind: z.literal('none') }),
  z.object({
    kind: z.literal('filesystem'),
    fsType: FileSystemType.exclude(['swap']),
    /** The source's file system UUID (vfat: its volume id, 'ABCD-1234'), kept so fstab and boot entries stay valid. */
    uuid: z.string().max(64).default(''),
    label: z.string().max(256).default(''),
    /** Where the source mounts it, relative to the source root ('/' , '/boot'); '' when not mounted. */
    mountPoint: z.string().max(4096).default(''),
    /** Bytes in use on the source (file level: a shrunk partition must hold them with a margin). */
    usedBytes: bytes.default(0),
    /** btrfs only: every subvolume, and the default one ('' = the top level). */
    subvolumes: z.array(BtrfsSubvolumeSchema).max(4096).default([]),
    defaultSubvolume: z.string().max(4096).default(''),
  }),
  z.object({ kind: z.literal('swap'), uuid: z.string().max(64).default(''), label: z.string().max(256).default('') }),
  /** An LVM physical volume of volume group `vg` (see Layout.volumeGroups). */
  z.object({ kind: z.literal('lvm-pv'), vg: id, uuid: z.string().max(64).default('') }),
]);
export type Content = z.infer<typeof ContentSchema>;

export const PartitionSchema = z.object({
  /** Stable id of this volume within the layout ('disk0p2'); replies and the copy name volumes by it. */
  id,
  /** Partition number on the target (MBR: 1–4 primary or extended, 5+ logical). */
  number: z.number().int().min(1).max(128),
  sizeBytes: bytes,
  /**
   * The source partition's size (discovery sets it; plan.ts keeps it). The
   * receiver refuses a target smaller than it where the copy is a block copy
   * (block mode, an ESP, a BIOS boot partition), and checks used space with a
   * margin only where the partition shrinks (validate.ts). Absent: unknown.
   */
  sourceSizeBytes: bytes.optional(),
  /** Set only when the copy needs the source's exact place (whole-disk block copy). */
  startBytes: bytes.optional(),
  /** GPT: the type GUID (upper case); MBR: the type byte in hex ('83', '82', '8e', 'ef', '5', 'f'). */
  type: z.string().regex(/^([0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}|[0-9a-f]{1,2})$/),
  /** GPT partition name. */
  name: z.string().max(72).default(''),
  /** GPT partition UUID (PARTUUID), kept when known. */
  partUuid: z.string().max(64).default(''),
  /** GPT attribute names as sfdisk writes them ('LegacyBIOSBootable', 'RequiredPartition', 'GUID:63'). */
  attrs: z.array(z.string().max(32)).max(16).default([]),
  /** MBR: the active (boot) flag. */
  bootable: z.boolean().default(false),
  /** MBR: a logical partition inside the extended one. */
  logical: z.boolean().default(false),
  /** The source's device for this partition ('/dev/sda2'): the agent copies from it; the receiver ignores it. */
  sourceDevice: z.string().max(4096).default(''),
  content: ContentSchema,
});
export type Partition = z.infer<typeof PartitionSchema>;

export const DiskSchema = z.object({
  /** The receiver's disk name (`ferry receive --disk NAME=DEVICE`): 'disk0', 'disk1', … by default. */
  name: id,
  /** The source disk's size (the target disk may be larger; smaller only at file level, see validate.ts). */
  sizeBytes: bytes,
  table: TableType,
  /** GPT disk GUID or MBR disk identifier ('0x1234abcd'), kept when known. */
  tableId: z.string().max(64).default(''),
  partitions: z.array(PartitionSchema).max(128),
  /** The source disk ('/dev/sda'): the agent copies from it; the receiver ignores it. */
  sourceDevice: z.string().max(4096).default(''),
});
export type Disk = z.infer<typeof DiskSchema>;

export const LogicalVolumeSchema = z.object({
  id,
  name: id,
  sizeBytes: bytes,
  /** The source LV's size, as on PartitionSchema. */
  sourceSizeBytes: bytes.optional(),
  sourceDevice: z.string().max(4096).default(''),
  content: ContentSchema,
});
export type LogicalVolume = z.infer<typeof LogicalVolumeSchema>;

export const VolumeGroupSchema = z.object({
  name: id,
  uuid: z.string().max(64).default(''),
  /** Extent size in bytes (LVM's default is 4 MiB). */
  extentBytes: z.number().int().positive().default(4 << 20),
  logicalVolumes: z.array(LogicalVolumeSchema).max(256),
});
export type VolumeGroup = z.infer<typeof VolumeGroupSchema>;

export const LayoutSchema = z.object({
  version: z.literal(LAYOUT_VERSION),
  disks: z.array(DiskSchema).min(1).max(64),
  volumeGroups: z.array(VolumeGroupSchema).max(64).default([]),
});
export type Layout = z.infer<typeof LayoutSchema>;

/** Every partition and logical volume of a layout: disks in order, then volume groups. */
export function layoutVolumes(layout: Pick<Layout, 'disks' | 'volumeGroups'>): (Partition | LogicalVolume)[] {
  return [...layout.disks.flatMap((d) => d.partitions), ...layout.volumeGroups.flatMap((v) => v.logicalVolumes)];
}

/** How the volumes of a layout are copied: file trees into mounted file systems, or partitions (whole disks) as blocks. */
export const CopyMode = z.enum(['file', 'block']);
export type CopyMode = z.infer<typeof CopyMode>;
