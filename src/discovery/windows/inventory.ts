// From the Windows probes' JSON to the inventory model: drive letters as
// partition names, \\.\PhysicalDriveN as disk names, system_dir and the
// driver-files / services / account-rights checks. Pure: no I/O.

import type { DiskDeviceUse } from '../../sms/schemas/source.js';
import { errorMessage } from '../../errors/ferry-error.js';
import type { DiskInfo, HostInfo, Inventory, NicInfo, PartitionInfo } from '../model.js';
import { detectPlatform } from '../platform-detect.js';
import {
  windowsDisksProbeSchema,
  windowsNetworkProbeSchema,
  windowsRightsProbeSchema,
  windowsSystemProbeSchema,
  type WindowsProbeOutputs,
} from './probe-schema.js';
import type { z } from 'zod';

/** Privileges the agent needs to read raw volumes and snapshot them. */
export const REQUIRED_PRIVILEGES = ['SeBackupPrivilege', 'SeRestorePrivilege', 'SeManageVolumePrivilege'] as const;

function parseProbe<T extends z.ZodType>(name: string, schema: T, text: string | undefined, warnings: string[]): z.output<T> | undefined {
  if (text === undefined) return undefined;
  try {
    const r = schema.safeParse(JSON.parse(text.replace(/^\uFEFF/, '')));
    if (r.success) return r.data;
    const i = r.error.issues[0]!;
    warnings.push(`Windows probe ${name}: unexpected output at ${i.path.join('.')}: ${i.message}`);
  } catch (err) {
    warnings.push(`Windows probe ${name}: not JSON: ${errorMessage(err).slice(0, 200)}`);
  }
  return undefined;
}

export function prefixToNetmask(prefix: number): string {
  const bits = Math.max(0, Math.min(32, prefix));
  const n = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

/** WINDOWS2019_64BIT, WINDOWS2012_R2_64BIT, WINDOWS10_64BIT … from the OS caption. */
export function windowsVersionName(caption: string, arch: string): string {
  const bits = /64/.test(arch) ? '64BIT' : '32BIT';
  const server = /Server\s+(\d{4})(\s+R2)?/i.exec(caption);
  if (server) return `WINDOWS${server[1]}${server[2] ? '_R2' : ''}_${bits}`;
  const client = /Windows\s+(\d+(?:\.\d+)?)/i.exec(caption);
  if (client) return `WINDOWS${client[1]!.replace('.', '_')}_${bits}`;
  return `WINDOWS_${bits}`;
}

export function inventoryFromWindowsProbes(out: WindowsProbeOutputs): { inventory: Inventory; warnings: string[] } {
  const warnings: string[] = [];
  const disksProbe = parseProbe('disks', windowsDisksProbeSchema, out.disks, warnings);
  const netProbe = parseProbe('network', windowsNetworkProbeSchema, out.network, warnings);
  const sysProbe = parseProbe('system', windowsSystemProbeSchema, out.system, warnings);
  const rightsProbe = parseProbe('rights', windowsRightsProbeSchema, out.rights, warnings);

  const disks: DiskInfo[] = (disksProbe?.Disks ?? []).map((d) => {
    const partitions: PartitionInfo[] = d.Partitions.map((p) => {
      const v = p.Volume ?? undefined;
      const use: DiskDeviceUse = p.IsSystem ? 'BOOT' : p.IsBoot ? 'OS' : 'NORMAL';
      const guid = /\{[0-9a-fA-F-]+\}/.exec(v?.UniqueId ?? '')?.[0] ?? p.Guid ?? '';
      return {
        index: p.PartitionNumber,
        name: p.DriveLetter ? `${p.DriveLetter}:` : `\\\\?\\GLOBALROOT\\Device\\Harddisk${d.Number}\\Partition${p.PartitionNumber}`,
        sizeBytes: p.Size,
        fsType: v?.FileSystem ?? '',
        uuid: guid.replace(/[{}]/g, ''),
        mountPoint: p.DriveLetter ? `${p.DriveLetter}:\\` : (p.AccessPaths?.find((a) => !a.startsWith('\\\\?\\')) ?? ''),
        usedBytes: v && v.Size > 0 ? Math.max(0, v.Size - v.SizeRemaining) : p.Size,
        inodesUsed: 0,
        inodeSize: 0,
        clusterSize: v?.AllocationUnitSize ?? 0,
        use,
      };
    });
    const use: DiskDeviceUse = d.IsSystem ? 'BOOT' : d.IsBoot ? 'OS' : 'NORMAL';
    return {
      name: `\\\\.\\PhysicalDrive${d.Number}`,
      sizeBytes: d.Size,
      partitionTable: d.PartitionStyle === 'GPT' ? 'gpt' : d.PartitionStyle === 'MBR' ? 'mbr' : 'none',
      partitions,
      use,
      osDisk: use !== 'NORMAL',
      usedBytes: partitions.reduce((n, p) => n + p.sizeBytes, 0),
    };
  });

  const nics: NicInfo[] = (netProbe?.Adapters ?? []).map((a) => {
    const v4 = a.IPv4.find((x) => !x.Address.startsWith('169.254.')) ?? a.IPv4[0];
    const v6 = a.IPv6.find((x) => !x.Address.toLowerCase().startsWith('fe80')) ?? a.IPv6[0];
    return {
      name: a.Name,
      ipv4: v4?.Address ?? '',
      ipv6: (v6?.Address ?? '').replace(/%.*$/, ''),
      netmask: v4 ? prefixToNetmask(v4.PrefixLength) : '',
      gateway: a.IPv4Gateway[0] ?? a.IPv6Gateway[0] ?? '',
      mtu: a.Mtu ?? 0,
      mac: a.MacAddress.replace(/-/g, ':').toLowerCase(),
    };
  });

  const s = sysProbe;
  if (!s) warnings.push('Windows system probe gave nothing: OS, firmware and system directory unknown');
  const privileges = new Set((rightsProbe?.Privileges ?? []).map((p) => p.Name));
  const missingPrivs = REQUIRED_PRIVILEGES.filter((p) => !privileges.has(p));
  if (rightsProbe && !rightsProbe.IsAdministrator) warnings.push(`account ${rightsProbe.User} is not an Administrator`);
  if (rightsProbe && missingPrivs.length) warnings.push(`account ${rightsProbe.User} lacks ${missingPrivs.join(', ')}`);
  if (s && s.MissingDriverFiles.length) warnings.push(`driver files missing: ${s.MissingDriverFiles.join(', ')}`);
  if (s && s.AbnormalServices.length) warnings.push(`services not usable: ${s.AbnormalServices.map((x) => `${x.Name} (${x.Problem})`).join(', ')}`);
  const gwNic = nics.find((n) => n.gateway && n.ipv4) ?? nics.find((n) => n.ipv4);
  const host: HostInfo = {
    osType: 'WINDOWS',
    osVersion: s ? windowsVersionName(s.Caption, s.OSArchitecture) : '',
    kernelVersion: s ? `${s.Version}` : '',
    hostname: s?.Hostname ?? '',
    ip: gwNic?.ipv4 ?? '',
    firmware: /uefi/i.test(s?.FirmwareType ?? '') ? 'UEFI' : 'BIOS',
    cpuCount: s?.CpuCount ?? 0,
    memoryBytes: s?.MemoryBytes ?? 0,
    virtualizationType: s?.HypervisorPresent ? 'HVM' : 'PHYSICAL',
    paravirtualization: false,
    platform: detectPlatform({
      sys_vendor: s?.Manufacturer ?? '',
      product_name: s?.Model ?? '',
      bios_vendor: s?.BiosVendor ?? '',
      bios_version: s?.BiosVersion ?? '',
      chassis_asset_tag: s?.ChassisAssetTag ?? '',
    }),
    systemDir: s?.SystemDirectory ?? '',
    driverFilesOk: s ? s.MissingDriverFiles.length === 0 : false,
    systemServicesOk: s ? s.AbnormalServices.length === 0 : false,
    accountRightsOk: rightsProbe ? rightsProbe.IsAdministrator && missingPrivs.length === 0 : false,
  };
  return { inventory: { host, disks, volumeGroups: [], btrfs: [], nics }, warnings };
}
