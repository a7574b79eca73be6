// From a LinuxSnapshot (raw facts) to the inventory model, without touching
// the machine. Each part that the snapshot lacks (a tool missing, a device
// unreadable) stays empty and adds a warning.

import type { DiskDeviceUse } from '../../sms/schemas/source.js';
import type {
  BtrfsInfo,
  DiskInfo,
  HostInfo,
  Inventory,
  LogicalVolumeInfo,
  NicInfo,
  PartitionInfo,
  VolumeGroupInfo,
} from '../model.js';
import { parseBlkidExport } from './blkid.js';
import { parseDumpSuper, parseFilesystemDf, parseFilesystemShow, parseGetDefault, parseSubvolumeList } from './btrfs.js';
import {
  averageReadWaitMs,
  detectBootLoader,
  detectPlatform,
  linuxBlockCheck,
  osVersionName,
  parseOsRelease,
  virtualizationType,
} from './host.js';
import { mapperName, parseLvs, parsePvs, parseVgs } from './lvm.js';
import { mountOption, parseMountinfo, type MountEntry } from './mountinfo.js';
import { parseIpv4DefaultGateways, parseIpv6DefaultGateways } from './network.js';
import { detectPartitionTable } from './partition-table.js';
import type { LinuxSnapshot, StatfsInfo, ToolOutput } from './snapshot.js';
import { compareCodeUnits } from '../../platform/compare.js';

const SECTOR = 512;

interface FsUsage {
  usedBytes: number;
  freeBytes: number;
  inodesUsed: number;
  blockSize: number;
  blockCount: number;
}

function usage(st: StatfsInfo | undefined): FsUsage | undefined {
  if (!st) return undefined;
  return {
    usedBytes: Math.max(0, (st.blocks - st.bfree) * st.bsize),
    freeBytes: Math.max(0, st.bavail * st.bsize),
    inodesUsed: Math.max(0, st.files - st.ffree),
    blockSize: st.bsize,
    blockCount: st.blocks,
  };
}

/**
 * The mount that best represents a device: one of its whole file system
 * (root "/", not a bind mount or a Btrfs subvolume), then the shortest path.
 */
function pickMount(mounts: MountEntry[]): MountEntry | undefined {
  const rank = (m: MountEntry) => (m.root === '/' ? 0 : 1);
  return [...mounts].sort((a, b) => rank(a) - rank(b) || a.mountPoint.length - b.mountPoint.length || compareCodeUnits(a.mountPoint, b.mountPoint))[0];
}

function useOfMount(mountPoint: string): DiskDeviceUse {
  if (mountPoint === '/') return 'OS';
  if (mountPoint === '/boot' || mountPoint === '/boot/efi') return 'BOOT';
  return 'NORMAL';
}

function partitionUse(fsType: string, mountPoint: string): DiskDeviceUse {
  if (fsType === 'LVM2_member') return 'VOLUME_GROUP';
  if (fsType === 'btrfs') return 'BTRFS';
  return useOfMount(mountPoint);
}

function toolFailure(what: string, out: ToolOutput): string | undefined {
  return out.ok ? undefined : `${what}: ${out.error}`;
}

export function inventoryFromSnapshot(snap: LinuxSnapshot): { inventory: Inventory; warnings: string[] } {
  const warnings = [...snap.warnings];
  const mounts = parseMountinfo(snap.mountinfo);
  const mountsOf = (path: string, dev?: string): MountEntry[] =>
    mounts.filter((m) => m.source === path || (dev !== undefined && dev !== '' && m.majorMinor === dev && !m.majorMinor.startsWith('0:')));
  const blkid = (path: string): Record<string, string> => {
    const out = snap.blkid[path];
    return out?.ok ? parseBlkidExport(out.stdout) : {};
  };

  // md RAID: members report the array's mount.
  const mdOfMember = new Map<string, { path: string; dev: string }>();
  for (const md of snap.mdArrays) for (const m of md.members) mdOfMember.set(m, { path: `/dev/${md.name}`, dev: md.dev });

  const describe = (path: string, kernelName: string, dev: string, sizeBytes: number, index: number): PartitionInfo => {
    const id = blkid(path);
    let fsType = id.TYPE ?? '';
    let own = mountsOf(path, dev);
    const md = mdOfMember.get(kernelName);
    if (own.length === 0 && md) own = mountsOf(md.path, md.dev);
    const m = pickMount(own);
    const mountPoint = m?.mountPoint ?? '';
    // blkid could not open the device (a sandbox, a busy device): the kernel's mount table still names the type.
    if (fsType === '' && m && !snap.blkid[path]?.ok) fsType = m.fsType;
    const u = m ? usage(snap.statfs[m.mountPoint]) : undefined;
    return {
      index,
      name: path,
      sizeBytes,
      fsType,
      uuid: id.UUID ?? '',
      mountPoint,
      usedBytes: u ? Math.min(u.usedBytes, sizeBytes || u.usedBytes) : sizeBytes,
      inodesUsed: u?.inodesUsed ?? 0,
      inodeSize: snap.inodeSizes[path] ?? (md ? (snap.inodeSizes[md.path] ?? 0) : 0),
      use: partitionUse(fsType, mountPoint),
    };
  };

  // ---- disks
  const disks: DiskInfo[] = [];
  for (const bd of snap.blockDevices) {
    const path = `/dev/${bd.name}`;
    const sizeBytes = bd.sizeSectors * SECTOR;
    const whole = blkid(path);
    const head = bd.head === null ? null : Buffer.from(bd.head, 'hex');
    const table = detectPartitionTable(head, bd.logicalBlockSize, whole.TYPE ?? '');
    const partitions = [...bd.partitions]
      .sort((a, b) => a.number - b.number)
      .map((p) => describe(`/dev/${p.name}`, p.name, p.dev, p.sizeSectors * SECTOR, p.number));
    const wholeFs = whole.TYPE ?? '';
    const wholeMounted = mountsOf(path, bd.dev).length > 0;
    if (partitions.length === 0 && ((wholeFs !== '' && wholeFs !== 'LVM2_member') || wholeMounted)) {
      partitions.push(describe(path, bd.name, bd.dev, sizeBytes, 0));
    }
    const usedBytes =
      bd.partitions.length > 0 ? partitions.reduce((n, p) => n + p.sizeBytes, 0) : partitions.length === 1 ? partitions[0]!.usedBytes : 0;
    let use: DiskDeviceUse = 'NORMAL';
    if (bd.partitions.length === 0 && wholeFs === 'LVM2_member') use = 'VOLUME_GROUP';
    else if (bd.partitions.length === 0 && wholeFs === 'btrfs') use = 'BTRFS';
    disks.push({ name: path, sizeBytes, partitionTable: table, partitions, use, osDisk: false, usedBytes });
  }

  // ---- LVM
  const volumeGroups: VolumeGroupInfo[] = [];
  const lvmError = toolFailure('LVM (pvs)', snap.lvm.pvs) ?? toolFailure('LVM (vgs)', snap.lvm.vgs) ?? toolFailure('LVM (lvs)', snap.lvm.lvs);
  if (lvmError) {
    warnings.push(`${lvmError}: volume_groups left empty`);
  } else {
    try {
      const pvs = parsePvs((snap.lvm.pvs as { stdout: string }).stdout);
      const vgs = parseVgs((snap.lvm.vgs as { stdout: string }).stdout);
      const lvs = parseLvs((snap.lvm.lvs as { stdout: string }).stdout);
      // A VG living only on loop devices that are not reported (no --include-loop) is a lab's, not this server's.
      const reported = new Set(disks.flatMap((d) => [d.name, ...snap.blockDevices.filter((b) => `/dev/${b.name}` === d.name).flatMap((b) => b.partitions.map((p) => `/dev/${p.name}`))]));
      const hidden = (pv: string) => /^\/dev\/loop\d+(p\d+)?$/.test(pv) && !reported.has(pv);
      for (const vg of vgs) {
        const vgPvs = pvs.filter((p) => p.vg_name === vg.vg_name).map((p) => p.pv_name);
        if (vgPvs.length > 0 && vgPvs.every(hidden)) continue;
        const lvInfos: LogicalVolumeInfo[] = lvs
          .filter((lv) => lv.vg_name === vg.vg_name)
          .map((lv) => {
            const name = lv.lv_dm_path || mapperName(lv.vg_name, lv.lv_name);
            const lvPath = lv.lv_path || `/dev/${lv.vg_name}/${lv.lv_name}`;
            const active = lv.lv_active === 'active';
            const id = blkid(name);
            const m = pickMount([...mountsOf(name), ...mountsOf(lvPath)]);
            const u = m ? usage(snap.statfs[m.mountPoint]) : undefined;
            const mountPoint = m?.mountPoint ?? '';
            return {
              name,
              path: lvPath,
              sizeBytes: lv.lv_size,
              active,
              fsType: id.TYPE ?? '',
              mountPoint,
              usedBytes: u ? u.usedBytes : lv.lv_size,
              freeBytes: u ? u.freeBytes : 0,
              inodesUsed: u?.inodesUsed ?? 0,
              inodeSize: snap.inodeSizes[name] ?? 0,
              blockSize: u && u.blockSize <= 1_048_576 ? u.blockSize : 0,
              blockCount: u && u.blockCount <= 2_147_483_647 ? u.blockCount : 0,
              use: useOfMount(mountPoint),
            };
          });
        volumeGroups.push({
          name: vg.vg_name,
          sizeBytes: vg.vg_size,
          freeBytes: vg.vg_free,
          pvs: vgPvs,
          lvs: lvInfos,
        });
      }
      const inactive = volumeGroups.flatMap((vg) => vg.lvs).filter((lv) => !lv.active).length;
      if (inactive > 0) warnings.push(`LVM: ${inactive} logical volume(s) inactive: no mount or usage; file system read at the first extent on the PV`);
    } catch (err) {
      warnings.push(`LVM: could not parse the JSON reports: ${(err as Error).message.slice(0, 300)}`);
    }
  }

  // ---- Btrfs
  const btrfs: BtrfsInfo[] = [];
  for (const probe of snap.btrfs) {
    const show = probe.show.ok ? parseFilesystemShow(probe.show.stdout)[0] : undefined;
    const sup = probe.dumpSuper.ok ? parseDumpSuper(probe.dumpSuper.stdout) : undefined;
    if (!show && !sup) {
      warnings.push(`Btrfs on ${probe.device}: ${toolFailure('btrfs filesystem show', probe.show) ?? 'no file system found'}`);
      continue;
    }
    if (!sup) warnings.push(`Btrfs on ${probe.device}: ${toolFailure('dump-super', probe.dumpSuper)}: node and sector sizes unknown`);
    const devices = show?.devices.map((d) => d.path) ?? [probe.device];
    const uuid = show?.uuid ?? sup?.fsid ?? '';
    const fsMounts = mounts.filter((m) => m.fsType === 'btrfs' && devices.includes(m.source));
    const mountBySubvol = new Map<string, string>();
    for (const m of [...fsMounts].sort((a, b) => a.mountPoint.length - b.mountPoint.length)) {
      const id = mountOption(m.superOptions, 'subvolid');
      if (id !== undefined && !mountBySubvol.has(id)) mountBySubvol.set(id, m.mountPoint);
    }
    const info: BtrfsInfo = {
      uuid,
      label: show?.label ?? sup?.label ?? '',
      devices,
      totalBytes: sup?.totalBytes ?? show?.devices.reduce((n, d) => n + d.sizeBytes, 0) ?? 0,
      usedBytes: sup?.bytesUsed ?? 0,
      nodeSize: sup?.nodeSize ?? 0,
      sectorSize: sup?.sectorSize ?? 0,
      dataProfile: '',
      metadataProfile: '',
      systemProfile: '',
      globalReserveProfile: '',
      mountPoint: mountBySubvol.get('5') ?? pickMount(fsMounts)?.mountPoint ?? '',
      defaultSubvolId: '',
      defaultSubvolName: '',
      subvolumes: [],
    };
    if (probe.mountPoint === undefined) {
      warnings.push(`Btrfs ${uuid} on ${devices.join(',')} is not mounted: profiles, default subvolume and subvolumes not listed`);
    } else {
      if (probe.df?.ok) {
        const df = parseFilesystemDf(probe.df.stdout);
        info.dataProfile = df.data;
        info.metadataProfile = df.metadata;
        info.systemProfile = df.system;
        info.globalReserveProfile = df.globalReserve;
      } else if (probe.df) warnings.push(`Btrfs ${uuid}: ${toolFailure('btrfs filesystem df', probe.df)}`);
      if (probe.getDefault?.ok) {
        const d = parseGetDefault(probe.getDefault.stdout);
        info.defaultSubvolId = d.id;
        info.defaultSubvolName = d.name;
      } else if (probe.getDefault) warnings.push(`Btrfs ${uuid}: ${toolFailure('btrfs subvolume get-default', probe.getDefault)}`);
      if (probe.subvolumeList?.ok) {
        info.subvolumes = parseSubvolumeList(probe.subvolumeList.stdout).map((s) => ({
          id: s.id,
          parentId: s.parentId || s.topLevel,
          path: s.path,
          uuid: s.uuid,
          parentUuid: s.parentUuid === '-' ? '' : s.parentUuid,
          isSnapshot: s.parentUuid !== '' && s.parentUuid !== '-',
          mountPoint: mountBySubvol.get(s.id) ?? '',
        }));
      } else if (probe.subvolumeList) warnings.push(`Btrfs ${uuid}: ${toolFailure('btrfs subvolume list', probe.subvolumeList)}`);
    }
    btrfs.push(info);
  }

  // ---- roles of disks: BOOT holds /boot (or / when /boot is not separate) or the ESP; OS holds /.
  const bootMount = mounts.some((m) => m.mountPoint === '/boot') ? '/boot' : '/';
  const lvMountsByVg = new Map(volumeGroups.map((vg) => [vg.name, vg.lvs.map((lv) => lv.mountPoint)]));
  const btrfsMountsByDevice = new Map<string, string[]>();
  for (const b of btrfs) {
    const mps = [b.mountPoint, ...b.subvolumes.map((s) => s.mountPoint)].filter(Boolean);
    for (const d of b.devices) btrfsMountsByDevice.set(d, mps);
  }
  for (const disk of disks) {
    const held = new Set<string>();
    for (const p of disk.partitions) {
      if (p.mountPoint) held.add(p.mountPoint);
      for (const mp of btrfsMountsByDevice.get(p.name) ?? []) held.add(mp);
    }
    for (const mp of btrfsMountsByDevice.get(disk.name) ?? []) held.add(mp);
    const pvNames = new Set([disk.name, ...disk.partitions.map((p) => p.name)]);
    for (const vg of volumeGroups) if (vg.pvs.some((pv) => pvNames.has(pv))) for (const mp of lvMountsByVg.get(vg.name) ?? []) held.add(mp);
    if (held.has(bootMount) || held.has('/boot/efi')) disk.use = 'BOOT';
    else if (held.has('/')) disk.use = 'OS';
    disk.osDisk = disk.use === 'BOOT' || disk.use === 'OS';
  }

  // ---- NICs
  const gw4 = parseIpv4DefaultGateways(snap.route);
  const gw6 = parseIpv6DefaultGateways(snap.ipv6Route);
  const nics: NicInfo[] = snap.nics
    .filter((n) => n.name !== 'lo' && n.type !== 772)
    .map((n) => {
      const v4 = n.addresses.find((a) => a.family === 'IPv4');
      const v6s = n.addresses.filter((a) => a.family === 'IPv6');
      const v6 = v6s.find((a) => !a.address.toLowerCase().startsWith('fe80')) ?? v6s[0];
      return {
        name: n.name,
        ipv4: v4?.address ?? '',
        ipv6: v6?.address ?? '',
        netmask: v4?.netmask ?? '',
        gateway: gw4.get(n.name) ?? gw6.get(n.name) ?? '',
        mtu: n.mtu,
        mac: n.mac,
      };
    });

  // ---- host
  const h = snap.host;
  const osRelease = parseOsRelease(h.osRelease);
  if (h.osRelease === '') warnings.push('/etc/os-release unreadable: os_version unknown');
  const defaultNic = [...gw4.keys()].map((k) => nics.find((n) => n.name === k)).find((n) => n && n.ipv4);
  const ip = defaultNic?.ipv4 ?? nics.find((n) => n.ipv4)?.ipv4 ?? '';
  let bootLoader = detectBootLoader(h.bootFiles);
  if (!bootLoader) {
    warnings.push('no GRUB or LILO files found (the kernel may be booted directly by the hypervisor): reporting boot_loader GRUB');
    bootLoader = 'GRUB';
  }
  const host: HostInfo = {
    osType: 'LINUX',
    osVersion: osVersionName(osRelease, h.arch),
    kernelVersion: h.kernelRelease,
    hostname: h.hostname,
    ip,
    firmware: h.efi ? 'UEFI' : 'BIOS',
    cpuCount: h.cpuCount,
    memoryBytes: h.memoryBytes,
    virtualizationType: virtualizationType(h.hypervisorType, h.cpuHypervisorFlag, h.dmi),
    paravirtualization: h.paravirtBuses.length > 0,
    platform: detectPlatform(h.dmi, h.hypervisorType),
    bootLoader,
    hasRsync: h.hasRsync,
    hasTc: h.hasTc,
    rawDevices: h.rawDevices.join(','),
    linuxBlockCheck: linuxBlockCheck(osRelease, h.kernelRelease, h.arch),
    ioReadWait: averageReadWaitMs(
      h.diskstats,
      snap.blockDevices.map((d) => d.name),
    ),
  };

  return { inventory: { host, disks, volumeGroups, btrfs, nics }, warnings };
}
