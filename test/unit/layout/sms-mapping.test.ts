// A task's target_server and the Layout: the standard fields of tables
// 4-99..4-105 carry what they can, ferry's extension fields the rest, and
// the schema of POST /v3/tasks keeps them; mapping back starts from the
// source's layout and honours need_migration and adjust_size.

import { describe, expect, it } from 'vitest';
import { FerryError } from '../../../src/errors/ferry-error.js';
import { layoutFromTargetServer, targetServerFromLayout, type TargetServer } from '../../../src/layout/sms-mapping.js';
import { targetServerByTaskSchema } from '../../../src/sms/schemas/task.js';
import { MIB, labLayout, labUuid } from './lab-layout.js';

const roundTrip = (ts: TargetServer): TargetServer => targetServerByTaskSchema.parse(JSON.parse(JSON.stringify(ts)));

describe('targetServerFromLayout', () => {
  it('writes the tables\' fields (Disk i, sizes, index, file system, mount point, UUID, use, VGs, btrfs) and the extensions', () => {
    const ts = targetServerFromLayout(labLayout(), 'web-1');
    expect(ts.name).toBe('web-1');
    expect(ts.disks.map((d) => [d.name, d.size, d.partition_style, d.device_use])).toEqual([
      ['Disk 0', 920 * MIB, 'GPT', 'OS'],
      ['Disk 1', 568 * MIB, 'MBR', 'NORMAL'],
    ]);
    expect(ts.disks[0]!.physical_volumes[1]).toEqual({
      index: 2,
      name: '/dev/sda2',
      size: 64 * MIB,
      used_size: 64 * MIB,
      file_system: 'vfat',
      mount_point: '/boot/efi',
      uuid: '1234-ABCD',
      device_use: 'BOOT',
      inode_size: 0,
      partition_type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
      partition_name: 'EFI System',
      partition_uuid: '',
      flags: ['RequiredPartition'],
      bootable: false,
      logical: false,
      start: 2 * MIB,
      label: 'EFI',
    });
    expect(ts.volume_groups![0]).toMatchObject({ name: 'vg0', components: '/dev/sdb3', size: 40 * MIB, free_size: 24 * MIB });
    expect(ts.btrfs_list![0]).toMatchObject({
      uuid: labUuid('btrfs', ''),
      device: '/dev/sda5',
      default_subvol_name: '@',
      default_subvol_mountpath: '/srv',
      subvolume: [
        expect.objectContaining({ subvol_name: '@', is_snapshot: 'false', subvol_mount_path: '/srv' }),
        expect.objectContaining({ subvol_name: '@home', is_snapshot: 'false', subvol_mount_path: '/home' }),
        expect.objectContaining({ subvol_name: '@snap-1', is_snapshot: 'true', subvol_mount_path: '' }),
      ],
    });
  });

  it('survives the POST /v3/tasks schema with its extension fields, and maps back to the same layout', () => {
    const src = labLayout();
    const ts = roundTrip(targetServerFromLayout(src, 'web-1'));
    expect(ts.disks[1]!.physical_volumes[3]).toMatchObject({ logical: true, partition_type: '83', start: 362 * MIB });
    expect(layoutFromTargetServer(ts, src)).toEqual(src);
  });
});

describe('layoutFromTargetServer', () => {
  it('need_migration: false leaves a partition out; adjust_size resizes one; the source fills in what the document leaves out', () => {
    const src = labLayout();
    const ts = roundTrip(targetServerFromLayout(src, 'web-1'));
    ts.disks[1]!.physical_volumes.find((p) => p.index === 6)!.need_migration = false;
    ts.disks[0]!.physical_volumes.find((p) => p.index === 3)!.adjust_size = 150 * MIB;
    ts.disks[0]!.physical_volumes = ts.disks[0]!.physical_volumes.filter((p) => p.index !== 1); // BIOS boot not listed: kept
    ts.disks[0]!.physical_volumes[2] = { index: 4, size: 320 * MIB }; // only the index and size: the rest from the source
    const l = layoutFromTargetServer(ts, src);
    expect(l.disks[1]!.partitions.map((p) => p.id)).toEqual(['disk1p1', 'disk1p2', 'disk1p3', 'disk1p5']);
    const boot = l.disks[0]!.partitions.find((p) => p.id === 'disk0p3')!;
    expect([boot.sizeBytes, boot.sourceSizeBytes]).toEqual([150 * MIB, 200 * MIB]);
    expect(l.disks[0]!.partitions.map((p) => p.id)).toEqual(src.disks[0]!.partitions.map((p) => p.id));
    expect(l.disks[0]!.partitions[3]).toEqual({ ...src.disks[0]!.partitions[3], startBytes: undefined });
    expect(l.disks.flatMap((d) => d.partitions).every((p) => p.startBytes === undefined)).toBe(true); // geometry changed: the receiver places them
  });

  it('an LV left out or resized, and a VG whose PV is left out goes with it', () => {
    const src = labLayout();
    const ts = roundTrip(targetServerFromLayout(src, 'web-1'));
    ts.volume_groups![0]!.logical_volumes![0]!.need_migration = false;
    ts.volume_groups![0]!.logical_volumes![1]!.adjust_size = 12 * MIB;
    expect(layoutFromTargetServer(ts, src).volumeGroups[0]!.logicalVolumes.map((lv) => [lv.name, lv.sizeBytes])).toEqual([['logs-1', 12 * MIB]]);
    ts.disks[1]!.physical_volumes.find((p) => p.index === 3)!.need_migration = false;
    expect(layoutFromTargetServer(ts, src).volumeGroups).toEqual([]);
  });

  it('an unknown file system type is FERRY_FS_UNSUPPORTED, naming it', () => {
    const src = labLayout();
    const ts = roundTrip(targetServerFromLayout(src, 'web-1'));
    ts.disks[0]!.physical_volumes[2]!.file_system = 'reiserfs';
    try {
      layoutFromTargetServer(ts, src);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FerryError);
      expect([(err as FerryError).code, (err as FerryError).message]).toEqual(['FERRY_FS_UNSUPPORTED', expect.stringContaining('"reiserfs"')]);
    }
  });

  it('a disk_id names the receiver disk; a table style other than the source\'s is refused', () => {
    const src = labLayout();
    const ts = roundTrip(targetServerFromLayout(src, 'web-1'));
    ts.disks[1]!.disk_id = 'data-disk';
    expect(layoutFromTargetServer(ts, src).disks.map((d) => d.name)).toEqual(['disk0', 'data-disk']);
    ts.disks[1]!.partition_style = 'GPT';
    expect(() => layoutFromTargetServer(ts, src)).toThrow(/partition_style GPT, the source disk disk1 is MBR/);
  });
});
