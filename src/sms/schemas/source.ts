// The body of `POST /v3/sources` (SMS v3 reference, section 4.1.2, tables
// 4-8 to 4-15): what the agent reports about the source server. Discovery
// builds it, the control-plane client sends it, the local control plane
// validates and stores it — this file is the single definition all three use.
//
// Reading of the document (where its tables and its example disagree):
// - Field names follow the example request and the response tables, which
//   agree with each other and with the published SDKs: `has_rsync` (table
//   4-8 misspells it `has_rsycn`), `volume_groups`, `paravirtualization`,
//   `system_services`, `account_rights`, `global_reserve1` (the PDF breaks
//   these names across lines), and in Btrfs `default_subvolid` and
//   `subvolumn` (table 4-11 says `default_subvol_id` / `subvolume`; the
//   example, table 4-91's sibling in the response and the SDKs use the former).
// - Types follow the tables, not the example: Btrfs `size`/`nodesize`/
//   `sectorsize`/`g_vol_used_size` are numbers (the example quotes them),
//   LV `inode_size` is an integer (the example quotes "256").
// - Disk `device_use`: table 4-9 lists BOOT and OS, but the example also sends
//   NORMAL (a data disk) and VOLUME_GROUP (a whole disk used as an LVM PV);
//   we accept those and BTRFS (a whole disk holding Btrfs), by analogy with
//   the partition value in the example. Partition and LV `device_use` are free
//   strings in the tables; ferry sends one of PARTITION_DEVICE_USES.
// - Long is int64 in the API; JSON numbers beyond 2^53 cannot be represented
//   in JavaScript, so a Long here is a safe non-negative integer.
// - Unknown fields: every object is a plain z.object, so unknown keys are
//   accepted and dropped rather than rejected. A server must tolerate newer
//   agents that send more, and the agent's own output is typed from these
//   schemas so TypeScript catches misspelt fields at build time.
// - Every field of table 4-8 is optional, as its Mandatory column says (No
//   for all of them), whatever a description adds ("mandatory for Linux"):
//   the local control plane and the client accept any registration that
//   `sourceBodySchema` accepts (the 4.1.2 example has no `raw_devices`).
//   The fields those descriptions ask for are what ferry's own discovery
//   promises to send: `sourceRegistrationSchema` checks discovery's output,
//   nothing else.

import { z } from 'zod';

import { int, list, long, str } from './scalars.js';

export const OS_TYPES = ['WINDOWS', 'LINUX'] as const;
export const FIRMWARE_TYPES = ['BIOS', 'UEFI'] as const;
export const BOOT_LOADERS = ['GRUB', 'LILO'] as const;
export const PARTITION_STYLES = ['MBR', 'GPT'] as const;
export const DISK_DEVICE_USES = ['BOOT', 'OS', 'NORMAL', 'VOLUME_GROUP', 'BTRFS'] as const;
/** Values ferry sends for a partition's or LV's free-text `device_use`. */
export const PARTITION_DEVICE_USES = ['BOOT', 'OS', 'NORMAL', 'VOLUME_GROUP', 'BTRFS'] as const;
export const PLATFORMS = ['hw', 'ali', 'aws', 'azure', 'gcp', 'tencent', 'vmware', 'hyperv', 'other'] as const;
export const MIGRATION_CYCLES = ['cutovering', 'cutovered', 'checking', 'setting', 'replicating', 'syncing'] as const;
export const SOURCE_STATES = [
  'unavailable',
  'waiting',
  'initialize',
  'replicate',
  'syncing',
  'stopping',
  'stopped',
  'deleting',
  'error',
  'cloning',
  'cutovering',
  'finished',
] as const;
/** `start_type`: MANUAL, MGC, or the empty string. */
export const START_TYPES = ['MANUAL', 'MGC', ''] as const;

/** Table 4-10: a partition (Linux device node, or a Windows drive letter). */
export const physicalVolumeSchema = z.object({
  device_use: str().optional(),
  file_system: str().optional(),
  index: int().optional(),
  mount_point: str().optional(),
  name: str().optional(),
  size: long().optional(),
  used_size: long().optional(),
  inode_size: int().optional(),
  inode_nums: long().optional(),
  uuid: str().optional(),
  size_per_cluster: int().optional(),
});

/** Table 4-9: a whole disk. */
export const serverDiskSchema = z.object({
  name: str(),
  partition_style: z.enum(PARTITION_STYLES).optional(),
  device_use: z.enum(DISK_DEVICE_USES),
  size: long(),
  used_size: long(),
  physical_volumes: list(physicalVolumeSchema),
  os_disk: z.boolean().optional(),
  relation_name: str().optional(),
  inode_size: int().optional(),
});

/** Table 4-12: a Btrfs subvolume or snapshot. */
export const btrfsSubvolumeSchema = z.object({
  uuid: str(),
  is_snapshot: str(),
  subvol_id: str(),
  parent_id: str(),
  subvol_name: str(),
  subvol_mount_path: str(),
});

/** Table 4-11: a Btrfs file system. */
export const btrfsFileSystemSchema = z.object({
  name: str(),
  label: str(),
  uuid: str(),
  device: str(),
  size: long(),
  nodesize: long(),
  sectorsize: int(),
  data_profile: str(),
  system_profile: str(),
  metadata_profile: str(),
  global_reserve1: str(),
  g_vol_used_size: long(),
  default_subvolid: str(),
  default_subvol_name: str(),
  default_subvol_mountpath: str(),
  subvolumn: list(btrfsSubvolumeSchema),
});

/** Table 4-13: a NIC. */
export const networkSchema = z.object({
  name: str(),
  ip: str(),
  ipv6: str().optional(),
  netmask: str(),
  gateway: str(),
  mtu: int().optional(),
  mac: str(),
  id: str().optional(),
});

/** Table 4-15: an LVM logical volume. */
export const logicalVolumeSchema = z.object({
  block_count: int().optional(),
  block_size: z.int().min(0).max(1_048_576).optional(),
  file_system: str(),
  inode_size: int(),
  inode_nums: long().optional(),
  device_use: str().optional(),
  mount_point: str(256),
  name: str(1024),
  size: long(),
  used_size: long(),
  free_size: long(),
});

/** Table 4-14: an LVM volume group. */
export const volumeGroupSchema = z.object({
  components: str().optional(),
  free_size: long().optional(),
  logical_volumes: list(logicalVolumeSchema, 255).optional(),
  name: str().optional(),
  size: long().optional(),
});

/** Table 4-8: the request body of POST /v3/sources, every field as documented (all optional). */
export const sourceBodySchema = z.object({
  id: str().optional(),
  ip: str().optional(),
  name: str().optional(),
  hostname: str().optional(),
  os_type: z.enum(OS_TYPES).optional(),
  os_version: str().optional(),
  virtualization_type: str().optional(),
  linux_block_check: str().optional(),
  firmware: z.enum(FIRMWARE_TYPES).optional(),
  cpu_quantity: int(65_535).optional(),
  /** Memory size; the table says MB, the example sends bytes. ferry sends bytes, as the example. */
  memory: long().optional(),
  disks: list(serverDiskSchema).optional(),
  btrfs_list: list(btrfsFileSystemSchema).optional(),
  networks: list(networkSchema).optional(),
  domain_id: str().optional(),
  has_rsync: z.boolean().optional(),
  paravirtualization: z.boolean().optional(),
  raw_devices: str().optional(),
  driver_files: z.boolean().optional(),
  system_services: z.boolean().optional(),
  account_rights: z.boolean().optional(),
  boot_loader: z.enum(BOOT_LOADERS).optional(),
  system_dir: str().optional(),
  volume_groups: list(volumeGroupSchema).optional(),
  agent_version: str().optional(),
  kernel_version: str().optional(),
  migration_cycle: z.enum(MIGRATION_CYCLES).optional(),
  state: z.enum(SOURCE_STATES).optional(),
  oem_system: z.boolean().optional(),
  start_type: z.enum(START_TYPES).optional(),
  io_read_wait: z.number().min(0).max(10_000).optional(),
  has_tc: z.boolean().optional(),
  platform: z.enum(PLATFORMS).optional(),
});

/** Fields the text calls mandatory for registration, for every OS. */
export const REGISTRATION_REQUIRED = ['ip', 'hostname', 'os_type', 'os_version'] as const;
/** Fields the text calls mandatory for Linux. */
export const LINUX_REQUIRED = [
  'btrfs_list',
  'has_rsync',
  'paravirtualization',
  'raw_devices',
  'boot_loader',
  'volume_groups',
  'has_tc',
] as const;
/** Fields the text calls mandatory for Windows. */
export const WINDOWS_REQUIRED = ['driver_files', 'system_services', 'account_rights', 'system_dir'] as const;

/**
 * What ferry's discovery sends when registering: table 4-8 plus the fields
 * the descriptions call mandatory for registering, for Linux and for
 * Windows, and partition style for every disk. A self-check of discovery's
 * output only: the API's Mandatory column makes all of them optional, so
 * neither the control plane nor the client demands them.
 */
export const sourceRegistrationSchema = sourceBodySchema.superRefine((body, ctx) => {
  const need = (fields: readonly (keyof SourceBody)[], why: string) => {
    for (const f of fields) {
      if (body[f] === undefined) ctx.addIssue({ code: 'custom', path: [f], message: `${f} is mandatory ${why}` });
    }
  };
  need(REGISTRATION_REQUIRED, 'for registering a source server');
  if (body.os_type === 'LINUX') need(LINUX_REQUIRED, 'for a Linux source server');
  if (body.os_type === 'WINDOWS') need(WINDOWS_REQUIRED, 'for a Windows source server');
  for (const [i, d] of (body.disks ?? []).entries()) {
    if (d.partition_style === undefined) {
      ctx.addIssue({ code: 'custom', path: ['disks', i, 'partition_style'], message: 'partition_style is mandatory for registration' });
    }
  }
});

export type PhysicalVolume = z.infer<typeof physicalVolumeSchema>;
export type ServerDisk = z.infer<typeof serverDiskSchema>;
export type BtrfsSubvolume = z.infer<typeof btrfsSubvolumeSchema>;
export type BtrfsFileSystem = z.infer<typeof btrfsFileSystemSchema>;
export type Network = z.infer<typeof networkSchema>;
export type LogicalVolume = z.infer<typeof logicalVolumeSchema>;
export type VolumeGroup = z.infer<typeof volumeGroupSchema>;
export type SourceBody = z.infer<typeof sourceBodySchema>;
export type DiskDeviceUse = (typeof DISK_DEVICE_USES)[number];
export type Platform = (typeof PLATFORMS)[number];
