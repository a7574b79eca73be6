// The target layout a task is created with comes from what its source
// registered: one target disk per source disk with the same partitions, the
// same volume groups and logical volumes, in a body POST /v3/tasks accepts.

import { describe, expect, it } from 'vitest';
import { sourceDetailsSchema, targetServerByTaskSchema } from '../../../src/sms/schemas/index.js';
import { targetServerFromSource } from '../../../src/sms/target-server.js';

const vg0 = {
  name: 'vg0',
  size: 20_400_000_000,
  free_size: 400_000_000,
  components: '/dev/vda2',
  logical_volumes: [{ name: 'root', size: 20_000_000_000, used_size: 5_000_000_000, free_size: 15_000_000_000, file_system: 'ext4', mount_point: '/', inode_size: 256 }],
};

describe('targetServerFromSource', () => {
  it("copies the source's disks, partitions and volume groups into table 4-99's shape", () => {
    const source = sourceDetailsSchema.parse({
      id: 'src-1',
      name: 'web01',
      os_type: 'LINUX',
      disks: [
        {
          name: '/dev/vda',
          size: 21_474_836_480,
          used_size: 5_368_709_120.7,
          device_use: 'BOOT',
          partition_style: 'GPT',
          physical_volumes: [
            { name: '/dev/vda1', index: 0, size: 1_073_741_824, used_size: 104_857_600, file_system: 'vfat', mount_point: '/boot/efi', device_use: 'BOOT', uuid: 'ABCD-1234' },
            // No index reported: its position stands in; no file system: the key is left out.
            { name: '/dev/vda2', size: 20_400_000_000, used_size: 0 },
          ],
        },
        // A data disk: device_use other than BOOT/OS becomes NORMAL; a missing size becomes 0.
        { name: '/dev/vdb', device_use: 'DATA', used_size: -1 },
      ],
      volume_groups: [vg0],
    });

    const target = targetServerFromSource(source);

    expect(target).toEqual({
      vm_id: 'ferry-target-src-1',
      name: 'web01-target',
      disks: [
        {
          name: '/dev/vda',
          size: 21_474_836_480,
          used_size: 5_368_709_120,
          device_use: 'BOOT',
          physical_volumes: [
            { name: '/dev/vda1', size: 1_073_741_824, used_size: 104_857_600, index: 0, file_system: 'vfat', mount_point: '/boot/efi', device_use: 'BOOT', uuid: 'ABCD-1234' },
            { name: '/dev/vda2', size: 20_400_000_000, used_size: 0, index: 1 },
          ],
        },
        { name: '/dev/vdb', size: 0, used_size: 0, device_use: 'NORMAL', physical_volumes: [] },
      ],
      // Volume groups and their logical volumes carry over as they are.
      volume_groups: [vg0],
    });
    expect(targetServerByTaskSchema.safeParse(target).success).toBe(true);
  });

  it("leaves out an MBR extended partition's size: Linux reports its link sector, not its extent", () => {
    const source = sourceDetailsSchema.parse({
      id: 'src-3',
      disks: [
        {
          name: '/dev/vdb', size: 600 * 2 ** 20, used_size: 600 * 2 ** 20, partition_style: 'MBR',
          physical_volumes: [
            { name: '/dev/vdb1', index: 1, size: 320 * 2 ** 20, used_size: 30 * 2 ** 20, file_system: 'xfs', mount_point: '/data' },
            { name: '/dev/vdb2', index: 2, size: 1024, used_size: 1024, file_system: '' },
            { name: '/dev/vdb5', index: 5, size: 100 * 2 ** 20, used_size: 12 * 2 ** 20, file_system: 'ext4', mount_point: '/var/log' },
          ],
        },
      ],
    });
    const target = targetServerFromSource(source);
    expect(target.disks[0]!.physical_volumes[1]).toEqual({ name: '/dev/vdb2', index: 2 });
    expect(target.disks[0]!.physical_volumes.map((p) => p.size)).toEqual([320 * 2 ** 20, undefined, 100 * 2 ** 20]);
    expect(targetServerByTaskSchema.safeParse(target).success).toBe(true);
  });

  it('names the target after the source id when the source has no name, and has no disks when it reported none', () => {
    const target = targetServerFromSource(sourceDetailsSchema.parse({ id: 'src-2' }));
    expect(target).toEqual({ vm_id: 'ferry-target-src-2', name: 'src-2-target', disks: [], volume_groups: [] });
  });
});
