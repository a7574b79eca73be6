// Discovery from recorded Linux snapshots (test/fixtures/linux/*.json, see
// the README there): NVMe with root on an active LV, an SD card (mmcblk) on
// a host without LVM or Btrfs tools, and md RAID1 over two SATA disks. The
// snapshot → inventory → body path is pure, so these run anywhere.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { discoverFromLinuxSnapshot } from '../../../src/discovery/index.js';
import type { LinuxSnapshot } from '../../../src/discovery/linux/snapshot.js';
import { sourceRegistrationSchema } from '../../../src/sms/schemas/source.js';

const fixture = (name: string): LinuxSnapshot =>
  JSON.parse(readFileSync(new URL(`../../fixtures/linux/${name}.json`, import.meta.url), 'utf8')) as LinuxSnapshot;

describe('NVMe host (EC2, UEFI, / on an active LV, whole-disk xfs data disk)', () => {
  const { body, warnings } = discoverFromLinuxSnapshot(fixture('nvme-ec2-lvm-root'));

  it('is a valid registration', () => {
    expect(sourceRegistrationSchema.safeParse(body).success).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('names NVMe namespaces and their pN partitions, GPT read from the disk', () => {
    expect(body.disks!.map((d) => d.name)).toEqual(['/dev/nvme0n1', '/dev/nvme1n1']);
    const [sys, data] = body.disks!;
    expect(sys!.partition_style).toBe('GPT');
    expect(sys!.physical_volumes.map((p) => [p.index, p.name, p.file_system, p.mount_point, p.device_use])).toEqual([
      [1, '/dev/nvme0n1p1', 'vfat', '/boot/efi', 'BOOT'],
      [2, '/dev/nvme0n1p2', 'ext4', '/boot', 'BOOT'],
      [3, '/dev/nvme0n1p3', 'LVM2_member', '', 'VOLUME_GROUP'],
    ]);
    expect(sys!.device_use).toBe('BOOT');
    expect(sys!.os_disk).toBe(true);
    expect(sys!.size).toBe(614400 * 512);
    expect(data!.device_use).toBe('NORMAL');
    expect(data!.os_disk).toBe(false);
    expect(data!.physical_volumes).toMatchObject([{ index: 0, name: '/dev/nvme1n1', file_system: 'xfs', mount_point: '/data', inode_size: 512 }]);
    expect(data!.physical_volumes[0]!.used_size).toBe((65536 - 60917) * 4096);
  });

  it('reports the mounted root LV with its file system and usage', () => {
    expect(body.volume_groups).toHaveLength(1);
    const vg = body.volume_groups![0]!;
    expect(vg).toMatchObject({ name: 'system', size: 209715200, free_size: 104857600, components: '/dev/nvme0n1p3' });
    expect(vg.logical_volumes).toEqual([
      {
        name: '/dev/mapper/system-root',
        size: 104857600,
        used_size: (24805 - 11210) * 4096,
        free_size: 9874 * 4096,
        file_system: 'ext4',
        mount_point: '/',
        device_use: 'OS',
        inode_size: 256,
        inode_nums: 6400 - 1722,
        block_size: 4096,
        block_count: 24805,
      },
    ]);
  });

  it('leaves out a VG that lives only on unreported loop devices', () => {
    const snap = fixture('nvme-ec2-lvm-root');
    const add = (out: { ok: boolean; stdout?: string }, key: string, row: object) => {
      const j = JSON.parse(out.stdout!) as { report: Record<string, object[]>[] };
      j.report[0]![key]!.push(row);
      out.stdout = JSON.stringify(j);
    };
    add(snap.lvm.pvs, 'pv', { pv_name: '/dev/loop7', vg_name: 'labvg', pv_size: '8388608B', pv_free: '0B' });
    add(snap.lvm.vgs, 'vg', { vg_name: 'labvg', vg_size: '8388608B', vg_free: '0B' });
    add(snap.lvm.lvs, 'lv', { lv_name: 'x', vg_name: 'labvg', lv_size: '8388608B', lv_path: '/dev/labvg/x', lv_dm_path: '/dev/mapper/labvg-x', lv_active: '' });
    const r = discoverFromLinuxSnapshot(snap);
    expect(r.body.volume_groups!.map((v) => v.name)).toEqual(['system']);
    expect(r.warnings).toEqual([]);
  });

  it('knows the host: UEFI, AWS, Ubuntu, NIC with gateway', () => {
    expect(body).toMatchObject({
      firmware: 'UEFI',
      platform: 'aws',
      os_version: 'UBUNTU22_04_64BIT',
      kernel_version: '6.5.0-1017-aws',
      hostname: 'ip-172-31-5-10',
      ip: '172.31.5.10',
      virtualization_type: 'HVM',
      boot_loader: 'GRUB',
      cpu_quantity: 4,
    });
    expect(body.networks).toEqual([
      { name: 'ens5', ip: '172.31.5.10', ipv6: 'fe80::81b:2cff:fe3d:4e5f', netmask: '255.255.240.0', gateway: '172.31.0.1', mtu: 9001, mac: '0a:1b:2c:3d:4e:5f' },
    ]);
    // (40980 + 1800) ms over (51234 + 1200) reads
    expect(body.io_read_wait).toBeCloseTo((40980 + 1800) / (51234 + 1200), 2);
  });
});

describe('SD card host (mmcblk, MBR, no LVM or Btrfs tools installed)', () => {
  const { body, warnings } = discoverFromLinuxSnapshot(fixture('mmcblk-no-lvm-btrfs-tools'));

  it('reports the card with its pN partitions, MBR read from the disk', () => {
    expect(body.disks).toHaveLength(1);
    const card = body.disks![0]!;
    expect(card).toMatchObject({ name: '/dev/mmcblk0', partition_style: 'MBR', device_use: 'BOOT', os_disk: true });
    expect(card.physical_volumes.map((p) => [p.name, p.file_system, p.mount_point, p.device_use])).toEqual([
      ['/dev/mmcblk0p1', 'vfat', '/boot/firmware', 'NORMAL'],
      ['/dev/mmcblk0p2', 'ext4', '/', 'OS'],
    ]);
  });

  it('leaves LVM and Btrfs empty and says why, without failing', () => {
    expect(body.volume_groups).toEqual([]);
    expect(body.btrfs_list).toEqual([]);
    expect(warnings).toContain('LVM (pvs): pvs: not installed (lvm2): volume_groups left empty');
    expect(warnings.some((w) => /btrfs-progs/.test(w))).toBe(true);
  });

  it('reports GRUB with a warning when no boot loader files exist, and rsync missing', () => {
    expect(body.boot_loader).toBe('GRUB');
    expect(warnings.some((w) => /no GRUB or LILO/.test(w))).toBe(true);
    expect(body.has_rsync).toBe(false);
    expect(body.os_version).toBe('DEBIAN12_64BIT');
    expect(JSON.parse(body.linux_block_check!)).toMatchObject({ architecture: 'aarch64', release_type: 'DEBIAN' });
  });

  it('keeps a NIC without addresses, with empty address fields', () => {
    expect(body.networks!.map((n) => n.name)).toEqual(['wlan0', 'eth0']);
    expect(body.networks![1]).toMatchObject({ ip: '', netmask: '', gateway: '', mac: 'dc:a6:32:01:02:04' });
    expect(body.ip).toBe('192.168.1.23');
  });
});

describe('md RAID1 host (two SATA disks, /boot and / on md arrays)', () => {
  const { body, warnings } = discoverFromLinuxSnapshot(fixture('md-raid1-sata'));

  it('reports RAID members with the array mount and usage', () => {
    expect(warnings).toEqual([]);
    expect(body.disks!.map((d) => d.name)).toEqual(['/dev/sda', '/dev/sdb']);
    for (const d of body.disks!) {
      expect(d.device_use).toBe('BOOT');
      expect(d.partition_style).toBe('GPT');
      expect(d.physical_volumes.map((p) => [p.file_system, p.mount_point, p.device_use])).toEqual([
        ['linux_raid_member', '/boot', 'BOOT'],
        ['linux_raid_member', '/', 'OS'],
      ]);
      expect(d.physical_volumes[1]!.used_size).toBe((5114880 - 4330123) * 4096);
      expect(d.physical_volumes[1]!.inode_size).toBe(512);
    }
    // the member UUID is the array's
    expect(body.disks![0]!.physical_volumes[0]!.uuid).toBe(body.disks![1]!.physical_volumes[0]!.uuid);
  });

  it('reads the host facts: Rocky 9, physical, raw devices, IPv4 gateway', () => {
    expect(body).toMatchObject({ os_version: 'ROCKY9_3_64BIT', virtualization_type: 'PHYSICAL', platform: 'other', raw_devices: 'raw1', paravirtualization: false });
    expect(body.networks![0]).toMatchObject({ name: 'eno1', gateway: '10.20.0.1', ipv6: '2001:db8:20::15' });
  });
});
