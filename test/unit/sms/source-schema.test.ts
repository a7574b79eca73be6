// The POST /v3/sources schema (tables 4-8 to 4-15): the documented example,
// with its numbers unquoted as the tables type them, is accepted; documented
// enums, lengths and registration-mandatory fields are enforced.
import { describe, expect, it } from 'vitest';
import { sourceBodySchema, sourceRegistrationSchema, type SourceBody } from '../../../src/sms/schemas/source.js';

function example(): SourceBody {
  return {
    os_type: 'LINUX',
    name: 'host-192-168-136-10',
    hostname: 'host-192-168-136-10',
    os_version: 'SUSE12_64BIT_SP2',
    linux_block_check: '{"release_type": "SUSE"}',
    kernel_version: '4.4.21-69-default',
    virtualization_type: 'HVM',
    paravirtualization: true,
    firmware: 'BIOS',
    has_rsync: true,
    has_tc: true,
    raw_devices: '',
    io_read_wait: 3.4,
    boot_loader: 'GRUB',
    disks: [
      {
        name: '/dev/vda',
        device_use: 'BOOT',
        size: 42949672960,
        partition_style: 'MBR',
        used_size: 42948624384,
        physical_volumes: [
          { name: '/dev/vda1', index: 1, size: 2153775104, device_use: 'NORMAL', used_size: 2153775104, inode_size: 0, inode_nums: 0, file_system: 'swap', mount_point: '' },
          { name: '/dev/vda2', index: 2, size: 16862150656, device_use: 'BTRFS', used_size: 16862150656, file_system: 'btrfs', mount_point: '' },
        ],
      },
      { name: '/dev/vdc', device_use: 'VOLUME_GROUP', size: 21474836480, partition_style: 'MBR', used_size: 0, physical_volumes: [] },
    ],
    volume_groups: [
      {
        name: 'vg1',
        size: 42948624384,
        components: '/dev/vdb1;/dev/vdc',
        logical_volumes: [
          { name: '/dev/mapper/vg1-lv1', device_use: 'NORMAL', size: 10737418240, free_size: 10713837568, used_size: 23580672, file_system: 'ext4', mount_point: '/mnt/lv1', inode_nums: 12345, inode_size: 256 },
        ],
      },
    ],
    btrfs_list: [
      {
        name: '/dev/vda2',
        label: '',
        uuid: '0b4a3c2e-0000-4000-8000-000000000001',
        device: '/dev/vda2',
        size: 3543348019,
        nodesize: 16384,
        sectorsize: 4096,
        data_profile: 'single',
        system_profile: 'single',
        metadata_profile: 'single',
        global_reserve1: '3.25MiB',
        g_vol_used_size: 3894038528,
        default_subvolid: '259',
        default_subvol_name: '@/snapshots/1/snapshot',
        default_subvol_mountpath: '/',
        subvolumn: [{ uuid: '0b4a3c2e-0000-4000-8000-000000000001', is_snapshot: 'false', subvol_id: '257', parent_id: '5', subvol_name: '@', subvol_mount_path: 'null' }],
      },
    ],
    cpu_quantity: 1,
    memory: 934752256,
    networks: [{ name: 'eth0', ip: '192.168.136.10', netmask: '255.255.255.0', gateway: '192.168.136.1', mac: 'fa:16:3e:00:00:01', mtu: 1500 }],
    ip: '192.168.136.10',
    agent_version: '2.2.1',
    platform: 'hw',
  };
}

describe('POST /v3/sources body schema', () => {
  it('accepts the documented example as a registration', () => {
    const r = sourceRegistrationSchema.safeParse(example());
    expect(r.success, JSON.stringify(r.error?.issues)).toBe(true);
  });

  it('rejects values outside the documented enums', () => {
    expect(sourceBodySchema.safeParse({ ...example(), os_type: 'SOLARIS' }).success).toBe(false);
    expect(sourceBodySchema.safeParse({ ...example(), firmware: 'CSM' }).success).toBe(false);
    expect(sourceBodySchema.safeParse({ ...example(), platform: 'oracle' }).success).toBe(false);
    const b = example();
    (b.disks![0] as { partition_style: string }).partition_style = 'APM';
    expect(sourceBodySchema.safeParse(b).success).toBe(false);
  });

  it('enforces lengths and ranges', () => {
    expect(sourceBodySchema.safeParse({ ...example(), hostname: 'h'.repeat(256) }).success).toBe(false);
    expect(sourceBodySchema.safeParse({ ...example(), cpu_quantity: 65536 }).success).toBe(false);
    expect(sourceBodySchema.safeParse({ ...example(), io_read_wait: 10000.5 }).success).toBe(false);
    expect(sourceBodySchema.safeParse({ ...example(), memory: -1 }).success).toBe(false);
    expect(sourceBodySchema.safeParse({ ...example(), memory: 1.5 }).success).toBe(false);
    const b = example();
    b.volume_groups![0]!.logical_volumes![0]!.mount_point = '/'.repeat(256);
    expect(sourceBodySchema.safeParse(b).success).toBe(true);
    b.volume_groups![0]!.logical_volumes![0]!.mount_point = '/'.repeat(257);
    expect(sourceBodySchema.safeParse(b).success).toBe(false);
  });

  it('requires the mandatory fields of nested objects', () => {
    const b = example() as Record<string, unknown>;
    const disks = b.disks as Record<string, unknown>[];
    delete disks[0]!.physical_volumes;
    expect(sourceBodySchema.safeParse(b).success).toBe(false);
  });

  it('accepts and drops unknown fields', () => {
    const r = sourceBodySchema.parse({ ...example(), future_field: 1 });
    expect('future_field' in r).toBe(false);
  });

  it('a registration needs ip, hostname, os type and version, and the Linux-mandatory fields', () => {
    const b = example() as Record<string, unknown>;
    delete b.hostname;
    delete b.has_tc;
    const r = sourceRegistrationSchema.safeParse(b);
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['has_tc', 'hostname']);
    // the same body is a valid update
    expect(sourceBodySchema.safeParse(b).success).toBe(true);
  });

  it('a Windows registration needs system_dir and the three checks', () => {
    const r = sourceRegistrationSchema.safeParse({ ip: '10.0.0.5', hostname: 'WIN1', os_type: 'WINDOWS', os_version: 'WINDOWS2019_64BIT' });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path[0]).sort()).toEqual(['account_rights', 'driver_files', 'system_dir', 'system_services']);
  });
});
