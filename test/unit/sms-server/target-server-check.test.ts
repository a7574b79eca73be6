// What the local control plane refuses in a task's `target_server` (POST
// /v3/tasks, tables 4-99 and 4-102 to 4-105), with which section 5.1 code,
// and that each message says where and what. The document's own example and
// the body `ferry tasks create` sends are accepted; so is an empty disk list.

import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/sms-server/api-error.js';
import { assertTargetServer, KNOWN_FILE_SYSTEMS, targetServerProblems } from '../../../src/sms-server/target-server-check.js';
import { EXAMPLES } from '../../fixtures/sms-request-examples.js';

const GiB = 1024 ** 3;

/** A valid two-disk target: GPT system disk and a data disk, one volume group. */
function body(): { target_server: Record<string, any> } {
  return {
    target_server: {
      vm_id: '',
      name: 'web01-target',
      disks: [
        {
          name: 'Disk 0',
          size: 20 * GiB,
          used_size: 10 * GiB,
          physical_volumes: [
            { name: '/dev/vda1', index: 0, size: 1 * GiB, used_size: 200 * 1024 ** 2, file_system: 'ext4', mount_point: '/boot' },
            { name: '/dev/vda2', index: 1, size: 8 * GiB, used_size: 3 * GiB, file_system: 'XFS', mount_point: '/' },
            { name: '/dev/vda3', index: 2, size: 1 * GiB, used_size: 1 * GiB, file_system: 'swap' },
          ],
        },
        { name: 'Disk 1', disk_id: 'data', size: 10 * GiB, used_size: 10 * GiB, physical_volumes: [{ name: '/dev/vdb1', index: 0, size: 10 * GiB, used_size: 10 * GiB, file_system: 'LVM2_member' }] },
      ],
      volume_groups: [
        {
          name: 'vg0',
          size: 10 * GiB,
          logical_volumes: [
            { name: 'data', size: 6 * GiB, used_size: 1 * GiB, free_size: 5 * GiB, file_system: 'xfs', mount_point: '/data', inode_size: 0 },
            { name: 'logs', size: 4 * GiB, used_size: 0, free_size: 4 * GiB, file_system: '', mount_point: '', inode_size: 0 },
          ],
        },
      ],
    },
  };
}

function refusal(b: unknown): { code: string; message: string; params: string[] } {
  try {
    assertTargetServer(b);
  } catch (e) {
    if (e instanceof ApiError) return { code: e.code, message: e.message, params: e.params };
    throw e;
  }
  throw new Error('accepted');
}

describe('target_server checks of POST /v3/tasks', () => {
  it("accepts the document's example, a layout with swap, LVM and a volume group, and an empty disk list", () => {
    expect(targetServerProblems(EXAMPLES.createTask.body)).toEqual([]);
    expect(targetServerProblems(body())).toEqual([]);
    const b = body();
    b.target_server.disks = [];
    expect(targetServerProblems(b)).toEqual([]);
  });

  it('refuses a body without target_server (SMS.6031), without vm_id (SMS.6032) or without disks (SMS.6033)', () => {
    expect(refusal({ name: 't' })).toMatchObject({ code: 'SMS.6031', message: expect.stringMatching(/needs a target_server object/) });
    const noVm = body();
    delete noVm.target_server.vm_id;
    expect(refusal(noVm)).toMatchObject({ code: 'SMS.6032', message: expect.stringMatching(/target_server\.vm_id/) });
    const noDisks = body();
    delete noDisks.target_server.disks;
    expect(refusal(noDisks)).toMatchObject({ code: 'SMS.6033', message: expect.stringMatching(/target_server\.disks must be a list/) });
  });

  it('refuses sizes that are not non-negative integers, naming the disk or partition and the value', () => {
    const b = body();
    b.target_server.disks[0].size = -1;
    expect(refusal(b)).toMatchObject({ code: 'SMS.9001', message: 'Target disk "Disk 0": size must be a non-negative integer (bytes), not -1.' });
    const c = body();
    c.target_server.disks[0].physical_volumes[1].size = 1.5;
    expect(refusal(c)).toMatchObject({
      code: 'SMS.6105',
      message: 'Partition "/dev/vda2" of target disk "Disk 0": size must be a non-negative integer (bytes), not 1.5.',
    });
    const d = body();
    d.target_server.disks[1].physical_volumes[0].size = '10G';
    expect(refusal(d).code).toBe('SMS.6105');
    const e = body();
    delete e.target_server.disks[0].physical_volumes[0].size;
    expect(refusal(e)).toMatchObject({ code: 'SMS.6105', message: expect.stringMatching(/size is missing while used_size is given/) });
  });

  it('refuses a partition or logical volume smaller than what it uses (SMS.6538) and a disk smaller than its used size (SMS.6614)', () => {
    const b = body();
    b.target_server.disks[0].physical_volumes[1].size = 2 * GiB;
    expect(refusal(b)).toMatchObject({
      code: 'SMS.6538',
      message: `Partition "/dev/vda2" of target disk "Disk 0": its size ${2 * GiB} bytes is less than the ${3 * GiB} bytes it uses; give it at least the used size (plus a margin).`,
    });
    const c = body();
    c.target_server.volume_groups[0].logical_volumes[0].size = 512 * 1024 ** 2;
    expect(refusal(c)).toMatchObject({ code: 'SMS.6538', message: expect.stringMatching(/^Logical volume "data" of volume group "vg0": its size/) });
    const d = body();
    d.target_server.disks[0].used_size = 21 * GiB;
    expect(refusal(d)).toMatchObject({ code: 'SMS.6614', message: expect.stringMatching(/^Target disk "Disk 0": used_size \d+ bytes is larger than its size/) });
  });

  it('refuses a physical-volume index used twice on one disk, but not the same index on two disks', () => {
    const b = body();
    b.target_server.disks[0].physical_volumes[2].index = 1;
    expect(refusal(b)).toMatchObject({
      code: 'SMS.9001',
      message: 'Invalid parameters: Partition "/dev/vda3" of target disk "Disk 0": index 1 is already used by physical_volumes[1] on the same disk; indexes must be unique per disk.',
    });
    // Disk 1's partition also has index 0, as Disk 0's first: that is fine.
    expect(body().target_server.disks[1].physical_volumes[0].index).toBe(0);
  });

  it('refuses a file system ferry does not know, naming it and the ones it knows', () => {
    const b = body();
    b.target_server.disks[0].physical_volumes[1].file_system = 'zfs_member';
    const r = refusal(b);
    expect(r.code).toBe('SMS.6509');
    expect(r.message).toBe(`Partition "/dev/vda2" of target disk "Disk 0": file system "zfs_member" is not one ferry knows; use one of ${KNOWN_FILE_SYSTEMS.join(', ')}, or '' for none.`);
    expect(KNOWN_FILE_SYSTEMS).toEqual(expect.arrayContaining(['ext4', 'xfs', 'btrfs', 'vfat', 'swap', 'LVM2_member', 'NTFS']));
    const c = body();
    c.target_server.volume_groups[0].logical_volumes[1].file_system = 'reiserfs';
    expect(refusal(c)).toMatchObject({ code: 'SMS.6509', message: expect.stringMatching(/^Logical volume "logs" of volume group "vg0": file system "reiserfs"/) });
  });

  it('refuses a volume group smaller than its logical volumes together (SMS.6541); volume_group_s is read too', () => {
    const b = body();
    b.target_server.volume_group_s = b.target_server.volume_groups;
    delete b.target_server.volume_groups;
    b.target_server.volume_group_s[0].size = 9 * GiB;
    expect(refusal(b)).toMatchObject({
      code: 'SMS.6541',
      message: `Volume group "vg0": its size ${9 * GiB} bytes is smaller than its logical volumes together (${10 * GiB} bytes); make the volume group larger or the logical volumes smaller.`,
    });
  });

  it('reports the first problem and lists every one in error_param', () => {
    const b = body();
    b.target_server.disks[0].size = -1;
    b.target_server.disks[1].physical_volumes[0].file_system = 'hfs';
    const r = refusal(b);
    expect(r.code).toBe('SMS.9001');
    expect(r.message).toMatch(/\(1 more problem in error_param\)$/);
    expect(r.params).toEqual([
      'target_server.disks[0].size: Target disk "Disk 0": size must be a non-negative integer (bytes), not -1.',
      expect.stringMatching(/^target_server\.disks\[1\]\.physical_volumes\[0\]\.file_system: Partition "\/dev\/vdb1" of target disk "Disk 1": file system "hfs"/),
    ]);
  });
});
