// Which disk a migrated system boots from, and which drivers its initramfs
// gets: the disk holding the ESP, else /boot, else / (with its BIOS boot
// partition and ESP device); the target drivers a kernel ships as modules
// (built-in ones need no listing; a driver missing from one kernel is not
// listed, dracut would fail on it), appended once to initramfs-tools'
// modules file and written as a dracut add_drivers line.
import { describe, expect, it } from 'vitest';
import { LayoutSchema } from '../../../../src/layout/model.js';
import { bootDiskOf } from '../../../../src/receiver/configure/boot-loader.js';
import { addInitramfsModules, dracutConf, driversToList, kernelModules } from '../../../../src/receiver/configure/drivers.js';

const fs = (mountPoint: string, fsType = 'ext4') => ({ kind: 'filesystem', fsType, mountPoint });

describe('bootDiskOf', () => {
  const layout = LayoutSchema.parse({
    version: 1,
    disks: [
      { name: 'data', sizeBytes: 1, table: 'dos', partitions: [{ id: 'data1', number: 1, sizeBytes: 1, type: '83', content: fs('/srv') }] },
      {
        name: 'sys',
        sizeBytes: 1,
        table: 'gpt',
        partitions: [
          { id: 'sys1', number: 1, sizeBytes: 1, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', content: fs('/boot/efi', 'vfat') },
          { id: 'sys2', number: 2, sizeBytes: 1, type: '21686148-6449-6E6F-744E-656564454649', content: { kind: 'none' } },
          { id: 'sys3', number: 3, sizeBytes: 1, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', content: fs('/') },
        ],
      },
    ],
  });
  const devices = new Map([['data1', '/dev/loop4p1'], ['sys1', '/dev/loop5p1'], ['sys3', '/dev/loop5p3']]);
  const disks = new Map([['data', '/dev/loop4'], ['sys', '/dev/loop5']]);

  it('is the disk with the ESP, whatever the order of the disks, with its BIOS boot partition and ESP device', () => {
    expect(bootDiskOf(layout, devices, disks)).toEqual({ name: 'sys', device: '/dev/loop5', table: 'gpt', biosBoot: true, esp: '/dev/loop5p1' });
  });

  it('without an ESP: the disk holding /boot, else /', () => {
    const noEsp = structuredClone(layout);
    noEsp.disks[1]!.partitions.shift();
    noEsp.disks[0]!.partitions[0]!.content = { ...noEsp.disks[0]!.partitions[0]!.content, mountPoint: '/boot' } as typeof noEsp.disks[0]['partitions'][0]['content'];
    expect(bootDiskOf(noEsp, devices, disks)).toEqual({ name: 'data', device: '/dev/loop4', table: 'dos', biosBoot: false });
  });
});

describe('target drivers', () => {
  const k = (dep: string[], builtin: string[] = []) =>
    kernelModules(dep.map((m) => `kernel/drivers/x/${m}.ko.xz: kernel/y.ko.xz`).join('\n'), builtin.map((m) => `kernel/drivers/x/${m}.ko`).join('\n'));

  it('lists the drivers every kernel ships as a module (xen-blkfront and xen_blkfront are one), not built-in ones', () => {
    const a = k(['virtio_blk', 'virtio_net', 'nvme', 'xen-blkfront', 'ena'], ['virtio_pci']);
    const b = k(['virtio_blk', 'virtio_net', 'nvme', 'xen_blkfront'], ['virtio_pci']);
    expect(driversToList([a, b])).toEqual(['virtio_blk', 'virtio_net', 'nvme', 'xen-blkfront']);
    expect(driversToList([])).toEqual([]);
  });

  it('initramfs-tools: appends what is missing once, with a comment; dracut: one add_drivers line', () => {
    const first = addInitramfsModules('# modules\nvirtio_net\n', ['virtio_blk', 'virtio_net']);
    expect(first).toEqual({ text: "# modules\nvirtio_net\n# ferry: drivers of the migrated server's new hardware\nvirtio_blk\n", added: ['virtio_blk'] });
    expect(addInitramfsModules(first.text, ['virtio_blk', 'virtio_net'])).toEqual({ text: first.text, added: [] });
    expect(dracutConf(['virtio_blk', 'nvme'])).toMatch(/\nadd_drivers\+=" virtio_blk nvme "\n$/);
  });
});
