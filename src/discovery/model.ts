// The inventory model: what discovery found on a machine, independent of how
// it was found (Linux sysfs and tools, Windows PowerShell probes) and of how
// it is reported (source-body.ts maps it to the SMS registration body).
// Sizes are bytes. Strings are '' when unknown, never undefined, so the
// mapping to the API never has to guess.

import type { DiskDeviceUse, Platform } from '../sms/schemas/source.js';

export type PartitionTable = 'gpt' | 'mbr' | 'none' | 'unknown';

/** A partition (Linux), a volume with a drive letter (Windows), or a file system on a whole disk (index 0). */
export interface PartitionInfo {
  index: number;
  /** /dev/vda1, or C: on Windows. */
  name: string;
  sizeBytes: number;
  /** blkid TYPE (ext4, xfs, swap, btrfs, LVM2_member, vfat, linux_raid_member …) or the Windows file system. */
  fsType: string;
  uuid: string;
  mountPoint: string;
  /** Used bytes of the mounted file system, or sizeBytes when not measurable. */
  usedBytes: number;
  inodesUsed: number;
  /** On-disk inode size in bytes, 0 when unknown. */
  inodeSize: number;
  /** Cluster (allocation unit) size, Windows only. */
  clusterSize?: number;
  /** NORMAL, BOOT, OS, VOLUME_GROUP, BTRFS. */
  use: DiskDeviceUse;
}

export interface DiskInfo {
  /** /dev/vda, or Windows "Disk 0" style name. */
  name: string;
  sizeBytes: number;
  partitionTable: PartitionTable;
  partitions: PartitionInfo[];
  use: DiskDeviceUse;
  osDisk: boolean;
  /** Bytes allocated to partitions (or the whole-disk file system's used bytes). */
  usedBytes: number;
}

export interface LogicalVolumeInfo {
  /** /dev/mapper/vg-lv */
  name: string;
  path: string;
  sizeBytes: number;
  active: boolean;
  fsType: string;
  mountPoint: string;
  usedBytes: number;
  freeBytes: number;
  inodesUsed: number;
  inodeSize: number;
  blockSize: number;
  blockCount: number;
  use: DiskDeviceUse;
}

export interface VolumeGroupInfo {
  name: string;
  sizeBytes: number;
  freeBytes: number;
  /** PV device names in the order LVM reports them. */
  pvs: string[];
  lvs: LogicalVolumeInfo[];
}

export interface BtrfsSubvolumeInfo {
  id: string;
  parentId: string;
  path: string;
  uuid: string;
  parentUuid: string;
  isSnapshot: boolean;
  /** Where this subvolume is mounted, '' if not. */
  mountPoint: string;
}

export interface BtrfsInfo {
  uuid: string;
  label: string;
  devices: string[];
  totalBytes: number;
  usedBytes: number;
  nodeSize: number;
  sectorSize: number;
  dataProfile: string;
  metadataProfile: string;
  systemProfile: string;
  globalReserveProfile: string;
  /** Mount point of the file system's top level or any subvolume, '' if unmounted. */
  mountPoint: string;
  defaultSubvolId: string;
  defaultSubvolName: string;
  subvolumes: BtrfsSubvolumeInfo[];
}

export interface NicInfo {
  name: string;
  ipv4: string;
  ipv6: string;
  netmask: string;
  gateway: string;
  mtu: number;
  mac: string;
}

export interface HostInfo {
  osType: 'LINUX' | 'WINDOWS';
  osVersion: string;
  kernelVersion: string;
  hostname: string;
  ip: string;
  firmware: 'BIOS' | 'UEFI';
  cpuCount: number;
  memoryBytes: number;
  virtualizationType: string;
  paravirtualization: boolean;
  platform: Platform;
  // Linux
  bootLoader?: 'GRUB' | 'LILO';
  hasRsync?: boolean;
  hasTc?: boolean;
  rawDevices?: string;
  linuxBlockCheck?: string;
  ioReadWait?: number;
  // Windows
  systemDir?: string;
  /** true when no driver file is missing. */
  driverFilesOk?: boolean;
  /** true when no required service is abnormal. */
  systemServicesOk?: boolean;
  /** true when the account holds the rights the agent needs. */
  accountRightsOk?: boolean;
}

export interface Inventory {
  host: HostInfo;
  disks: DiskInfo[];
  volumeGroups: VolumeGroupInfo[];
  btrfs: BtrfsInfo[];
  nics: NicInfo[];
}

/** Something discovery could not see; the part stays empty and the run goes on. */
export type Warnings = string[];
