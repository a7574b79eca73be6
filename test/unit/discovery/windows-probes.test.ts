// The Windows probe parsers on outputs of native-probes/windows/*.ps1
// recorded as fixtures (test/fixtures/windows/): a BIOS/MBR server with one
// disk, and a UEFI/GPT server with a system disk and two data disks.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inventoryFromWindowsProbes, prefixToNetmask, windowsVersionName } from '../../../src/discovery/windows/inventory.js';
import type { WindowsProbeOutputs } from '../../../src/discovery/windows/probe-schema.js';
import { finishDiscovery } from '../../../src/discovery/index.js';
import { sourceRegistrationSchema } from '../../../src/sms/schemas/source.js';

function probes(dir: string): WindowsProbeOutputs {
  const read = (n: string) => readFileSync(new URL(`../../fixtures/windows/${dir}/${n}.json`, import.meta.url), 'utf8');
  return { disks: read('disks'), network: read('network'), system: read('system'), rights: read('rights') };
}
function discover(p: WindowsProbeOutputs) {
  const r = inventoryFromWindowsProbes(p);
  return finishDiscovery(r.inventory, r.warnings);
}

describe('BIOS/MBR server, one disk (VMware, Windows Server 2016)', () => {
  const { body, warnings } = discover(probes('bios-mbr-single-disk'));

  it('is a valid Windows registration without warnings', () => {
    const r = sourceRegistrationSchema.safeParse(body);
    expect(r.success, JSON.stringify(r.error?.issues)).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('reports the disk with System Reserved and C:', () => {
    expect(body.disks).toHaveLength(1);
    const d = body.disks![0]!;
    expect(d).toMatchObject({ name: '\\\\.\\PhysicalDrive0', partition_style: 'MBR', device_use: 'BOOT', os_disk: true, size: 60 * 1024 ** 3 });
    expect(d.physical_volumes.map((p) => [p.index, p.name, p.file_system, p.mount_point, p.device_use])).toEqual([
      [1, '\\\\?\\GLOBALROOT\\Device\\Harddisk0\\Partition1', 'NTFS', '', 'BOOT'],
      [2, 'C:', 'NTFS', 'C:\\', 'OS'],
    ]);
    const c = d.physical_volumes[1]!;
    expect(c.used_size).toBe(60 * 1024 ** 3 - 502 * 1024 ** 2 - 4096 - 38 * 1024 ** 3);
    expect(c.size_per_cluster).toBe(4096);
    expect(c.uuid).toBe('6a1b2c3d-0000-0000-0000-100000000001');
  });

  it('fills the Windows fields and the host', () => {
    expect(body).toMatchObject({
      os_type: 'WINDOWS',
      os_version: 'WINDOWS2016_64BIT',
      firmware: 'BIOS',
      platform: 'vmware',
      hostname: 'WIN2016-APP01',
      ip: '10.10.4.21',
      system_dir: 'C:\\Windows\\system32',
      driver_files: true,
      system_services: true,
      account_rights: true,
      cpu_quantity: 4,
      memory: 8588910592,
    });
    expect(body.networks).toEqual([
      { name: 'Ethernet0', ip: '10.10.4.21', ipv6: 'fe80::8d4c:21aa:7b1e:9f10', netmask: '255.255.255.0', gateway: '10.10.4.1', mtu: 1500, mac: '00:50:56:9a:1b:2c' },
    ]);
    // Linux-only fields stay out of a Windows body
    expect(body.btrfs_list).toBeUndefined();
    expect(body.has_rsync).toBeUndefined();
  });
});

describe('UEFI/GPT server, system disk and two data disks (Azure, Windows Server 2022)', () => {
  const { body, warnings } = discover(probes('uefi-gpt-two-data-disks'));

  it('reports three GPT disks: the system disk as BOOT, the data disks as NORMAL', () => {
    expect(body.disks!.map((d) => [d.name, d.partition_style, d.device_use, d.os_disk])).toEqual([
      ['\\\\.\\PhysicalDrive0', 'GPT', 'BOOT', true],
      ['\\\\.\\PhysicalDrive1', 'GPT', 'NORMAL', false],
      ['\\\\.\\PhysicalDrive2', 'GPT', 'NORMAL', false],
    ]);
  });

  it('names volumes by drive letter; the ESP is BOOT, C: is OS, the MSR has no file system', () => {
    const sys = body.disks![0]!.physical_volumes;
    expect(sys.map((p) => [p.index, p.file_system, p.device_use, p.mount_point])).toEqual([
      [1, 'NTFS', 'NORMAL', ''],
      [2, 'FAT32', 'BOOT', ''],
      [3, '', 'NORMAL', ''],
      [4, 'NTFS', 'OS', 'C:\\'],
    ]);
    expect(sys[3]!.name).toBe('C:');
    expect(sys[2]!.used_size).toBe(sys[2]!.size); // no volume: counted as used
    expect(body.disks![1]!.physical_volumes[1]).toMatchObject({ name: 'D:', file_system: 'NTFS', size_per_cluster: 65536 });
    expect(body.disks![2]!.physical_volumes[1]).toMatchObject({ name: 'E:', file_system: 'ReFS', mount_point: 'E:\\' });
    expect(body.disks![2]!.used_size).toBe(body.disks![2]!.physical_volumes.reduce((n, p) => n + p.size!, 0));
  });

  it('reports UEFI on Azure, the disabled VSS service and the missing privilege', () => {
    expect(body).toMatchObject({ firmware: 'UEFI', platform: 'azure', os_version: 'WINDOWS2022_64BIT', system_services: false, account_rights: false, driver_files: true, ip: '10.1.0.4' });
    expect(warnings).toContain('services not usable: VSS (disabled)');
    expect(warnings).toContain('account SQL-PROD-02\\svc-migrate lacks SeManageVolumePrivilege');
    // an APIPA address is not preferred, but a NIC with only that keeps it
    expect(body.networks![1]).toMatchObject({ name: 'Ethernet 2', ip: '169.254.12.7', netmask: '255.255.0.0', gateway: '', ipv6: 'fe80::1c2d:3e4f:5a6b:7c8d' });
  });
});

describe('robustness of the Windows parsers', () => {
  it('accepts PowerShell quirks: numeric partition style, single objects for arrays, NUL drive letters', () => {
    const disks = JSON.stringify({
      Disks: { Number: 0, Size: 1000, PartitionStyle: 2, IsBoot: true, IsSystem: true, Partitions: { PartitionNumber: 1, DriveLetter: '\u0000', Size: 900, IsBoot: true, IsSystem: true, Volume: null } },
    });
    const { inventory, warnings } = inventoryFromWindowsProbes({ disks });
    expect(inventory.disks[0]!.partitionTable).toBe('gpt');
    expect(inventory.disks[0]!.partitions[0]!.name).toBe('\\\\?\\GLOBALROOT\\Device\\Harddisk0\\Partition1');
    expect(warnings.some((w) => /system probe/.test(w))).toBe(true);
  });

  it('turns a broken probe into a warning, not a crash', () => {
    const { inventory, warnings } = inventoryFromWindowsProbes({ disks: 'Get-Disk : Access denied', network: '{"Adapters": 5}' });
    expect(inventory.disks).toEqual([]);
    expect(inventory.nics).toEqual([]);
    expect(warnings.some((w) => /probe disks: not JSON/.test(w))).toBe(true);
    expect(warnings.some((w) => /probe network: unexpected output/.test(w))).toBe(true);
  });

  it('names versions and netmasks', () => {
    expect(windowsVersionName('Microsoft Windows Server 2012 R2 Standard', '64-bit')).toBe('WINDOWS2012_R2_64BIT');
    expect(windowsVersionName('Microsoft Windows 10 Pro', '64-bit')).toBe('WINDOWS10_64BIT');
    expect(prefixToNetmask(20)).toBe('255.255.240.0');
    expect(prefixToNetmask(0)).toBe('0.0.0.0');
    expect(prefixToNetmask(32)).toBe('255.255.255.255');
  });
});

describe('the probe scripts and the fixtures agree', () => {
  it('every probe has a script printing JSON, and every fixture field is one the script writes', async () => {
    const { PROBES, probeScriptPath } = await import('../../../src/discovery/windows/collect.js');
    const keys = (v: unknown, out = new Set<string>()): Set<string> => {
      if (Array.isArray(v)) v.forEach((x) => keys(x, out));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (out.add(k), keys(x, out));
      return out;
    };
    for (const name of PROBES) {
      const script = readFileSync(probeScriptPath(name), 'utf8');
      expect(script).toMatch(/ConvertTo-Json/);
      for (const dir of ['bios-mbr-single-disk', 'uefi-gpt-two-data-disks']) {
        const text = readFileSync(new URL(`../../fixtures/windows/${dir}/${name}.json`, import.meta.url), 'utf8').replace(/^\uFEFF/, '');
        for (const k of keys(JSON.parse(text))) expect(script, `${name}.ps1 writes ${k}`).toMatch(new RegExp(`\\b${k}\\s*=`));
      }
    }
  });
});
