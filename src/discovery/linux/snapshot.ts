// The raw facts the Linux collector reads from the machine (sysfs, procfs,
// the first sectors of each disk, the tools' outputs), kept as text exactly
// as read. collect.ts fills it; inventory.ts turns it into the inventory
// without touching the machine, so a snapshot recorded on one host (see
// `ferry discover --snapshot`) replays anywhere as a test fixture.

/** A tool's answer: its stdout, or null with the reason it gave none. */
export type ToolOutput = { ok: true; stdout: string } | { ok: false; error: string };

export interface SysPartition {
  /** Kernel name: vda1, nvme0n1p2, mmcblk0p1, loop3p1. */
  name: string;
  /** major:minor from sysfs `dev`. */
  dev: string;
  /** /sys/block/<disk>/<part>/partition */
  number: number;
  /** 512-byte sectors. */
  startSectors: number;
  sizeSectors: number;
}

export interface SysBlockDevice {
  /** Kernel name under /sys/block. */
  name: string;
  /** major:minor from sysfs `dev`. */
  dev: string;
  /** /sys/block/<d>/size, 512-byte sectors. */
  sizeSectors: number;
  logicalBlockSize: number;
  removable: boolean;
  readOnly: boolean;
  partitions: SysPartition[];
  /** Names under /sys/block/<d>/holders (md arrays, dm devices using the whole disk). */
  holders: string[];
  /** For loop devices, the backing file ('' when detached). */
  loopBackingFile?: string;
  /** Hex of the first two logical blocks (LBA0 + LBA1), or null when unreadable. */
  head: string | null;
}

export interface StatfsInfo {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

export interface BtrfsProbe {
  /** A device of the file system. */
  device: string;
  show: ToolOutput;
  dumpSuper: ToolOutput;
  /** Present only when the file system is mounted somewhere (run on that mount). */
  mountPoint?: string;
  df?: ToolOutput;
  subvolumeList?: ToolOutput;
  getDefault?: ToolOutput;
}

export interface NicProbe {
  name: string;
  mtu: number;
  mac: string;
  /** /sys/class/net/<n>/type: 1 ether, 772 loopback … */
  type: number;
  addresses: { family: 'IPv4' | 'IPv6'; address: string; netmask: string; internal: boolean }[];
}

export interface LinuxSnapshot {
  /** Whole disks that passed the name filter (sd*, vd*, xvd*, nvme*n*, mmcblk*, loop* with --include-loop). */
  blockDevices: SysBlockDevice[];
  /** md arrays (/sys/block/md*) with their member partitions (slaves). */
  mdArrays: { name: string; dev: string; level: string; members: string[] }[];
  /**
   * `blkid -p -o export <dev>` per device path ('' when blkid found nothing);
   * for an inactive LV (keyed by its /dev/mapper name) the probe at its first
   * extent on the PV (`blkid -p -O <offset> -S <size>`).
   */
  blkid: Record<string, ToolOutput>;
  /** /proc/self/mountinfo */
  mountinfo: string;
  /** statfs per mount point. */
  statfs: Record<string, StatfsInfo>;
  /** On-disk inode size read from ext2/3/4 and xfs superblocks, per device. */
  inodeSizes: Record<string, number>;
  /** segments: `lvs --segments`, run only when some LV is inactive. */
  lvm: { pvs: ToolOutput; vgs: ToolOutput; lvs: ToolOutput; segments?: ToolOutput };
  btrfs: BtrfsProbe[];
  nics: NicProbe[];
  /** /proc/net/route and /proc/net/ipv6_route */
  route: string;
  ipv6Route: string;
  host: {
    hostname: string;
    osRelease: string;
    kernelRelease: string;
    arch: string;
    efi: boolean;
    /** /sys/class/dmi/id/* that exist (sys_vendor, product_name, bios_vendor, chassis_asset_tag …). */
    dmi: Record<string, string>;
    /** /sys/hypervisor/type, '' when absent. */
    hypervisorType: string;
    /** cpuinfo has the "hypervisor" flag. */
    cpuHypervisorFlag: boolean;
    /** Paravirtual buses with devices: virtio, xen, vmbus. */
    paravirtBuses: string[];
    cpuCount: number;
    memoryBytes: number;
    /** Boot-loader marker files that exist (/boot/grub, /boot/grub2, /etc/lilo.conf …). */
    bootFiles: string[];
    hasRsync: boolean;
    hasTc: boolean;
    /** Names under /dev/raw other than rawctl. */
    rawDevices: string[];
    /** /proc/diskstats */
    diskstats: string;
  };
  /** What the collector could not read. */
  warnings: string[];
}
