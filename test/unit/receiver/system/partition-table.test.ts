// Where the receiver puts partitions (layout/geometry.ts's rule) and the
// sfdisk script it writes (pure parts of receiver/system/partition-table.ts);
// the integration tests read the result back from real disks.
import { describe, expect, it } from 'vitest';
import { DiskSchema } from '../../../../src/layout/model.js';
import { placePartitions, sfdiskScript } from '../../../../src/receiver/system/partition-table.js';

const MiB = 1024 * 1024;
const none = { kind: 'none' };

describe('placePartitions', () => {
  it('places partitions by layout/geometry.ts\'s rule, in the layout\'s order, and the script lists them by number (the extended before its logicals)', () => {
    // The system lab's MBR disk: the PV (number 3) lies before the extended partition (number 2).
    const disk = DiskSchema.parse({
      name: 'd', sizeBytes: 100 * MiB, table: 'dos',
      partitions: [
        { id: 'p1', number: 1, sizeBytes: 10 * MiB, type: '83', content: none },
        { id: 'p3', number: 3, sizeBytes: 10 * MiB, type: '8e', content: none },
        { id: 'p2', number: 2, sizeBytes: 23 * MiB, type: '5', content: none },
        { id: 'p5', number: 5, sizeBytes: 10 * MiB, type: '83', logical: true, content: none },
        { id: 'p6', number: 6, sizeBytes: 10 * MiB, type: '83', logical: true, content: none },
      ],
    });
    const placed = placePartitions(disk, 512);
    expect(placed.map((p) => [p.partition.number, p.startBytes / MiB, p.sizeBytes / MiB])).toEqual([
      [1, 1, 10],
      [3, 11, 10],
      [2, 21, 23],
      [5, 22, 10],
      [6, 33, 10],
    ]);
    expect(sfdiskScript(disk, '/dev/sdb', placed, 512).split('\n').filter((l) => l.startsWith('/dev/')).map((l) => l.split(' ')[0])).toEqual([
      '/dev/sdb1', '/dev/sdb2', '/dev/sdb3', '/dev/sdb5', '/dev/sdb6',
    ]);
  });
});

describe('sfdiskScript', () => {
  it('writes the label, its id, and each partition with its number, type, PARTUUID, name and attributes (GPT) or boot flag (MBR)', () => {
    const gpt = DiskSchema.parse({
      name: 'd', sizeBytes: 0, table: 'gpt', tableId: '6E1A3C2B-0D4F-4B8A-9C7E-1F2D3A4B5C6D',
      partitions: [{ id: 'a', number: 2, sizeBytes: MiB, type: '21686148-6449-6E6F-744E-656564454649', name: 'bios "boot"', partUuid: 'D3B1A0C2-4E5F-4A6B-9C8D-7E6F5A4B3C2D', attrs: ['LegacyBIOSBootable', 'GUID:63'], content: none }],
    });
    expect(sfdiskScript(gpt, '/dev/loop7', placePartitions(gpt, 512), 512)).toBe(
      'label: gpt\nlabel-id: 6E1A3C2B-0D4F-4B8A-9C7E-1F2D3A4B5C6D\nunit: sectors\n\n' +
        '/dev/loop7p2 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, uuid=D3B1A0C2-4E5F-4A6B-9C8D-7E6F5A4B3C2D, name="bios _boot_", attrs="LegacyBIOSBootable GUID:63"\n',
    );
    const dos = DiskSchema.parse({ name: 'd', sizeBytes: 0, table: 'dos', partitions: [{ id: 'a', number: 1, sizeBytes: MiB, type: '83', bootable: true, content: none }] });
    expect(sfdiskScript(dos, '/dev/sdb', placePartitions(dos, 512), 512)).toBe('label: dos\nunit: sectors\n\n/dev/sdb1 : start=2048, size=2048, type=83, bootable\n');
  });
});
