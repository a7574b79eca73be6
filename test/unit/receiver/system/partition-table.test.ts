// Where the receiver puts partitions and the sfdisk script it writes (pure
// parts of receiver/system/partition-table.ts); the integration tests read
// the result back from real disks.
import { describe, expect, it } from 'vitest';
import { DiskSchema } from '../../../../src/layout/model.js';
import { FerryError } from '../../../../src/errors/ferry-error.js';
import { placePartitions, sfdiskScript } from '../../../../src/receiver/system/partition-table.js';

const MiB = 1024 * 1024;
const none = { kind: 'none' };

describe('placePartitions', () => {
  it('puts partitions one after the other from 1 MiB, aligned, and keeps a start the layout gives', () => {
    const disk = DiskSchema.parse({
      name: 'd', sizeBytes: 100 * MiB, table: 'gpt',
      partitions: [
        { id: 'a', number: 1, sizeBytes: 1 * MiB + 512, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', content: none },
        { id: 'b', number: 2, sizeBytes: 10 * MiB, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', content: none },
        { id: 'c', number: 3, startBytes: 40 * MiB, sizeBytes: 10 * MiB, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', content: none },
      ],
    });
    expect(placePartitions(disk, 100 * MiB, 512).map((p) => [p.partition.id, p.startBytes / MiB, p.sizeBytes])).toEqual([
      ['a', 1, 1 * MiB + 512],
      ['b', 3, 10 * MiB],
      ['c', 40, 10 * MiB],
    ]);
  });

  it('puts MBR logical partitions inside the extended one, each after a 1 MiB gap for its EBR, and grows the extended one to hold them', () => {
    const disk = DiskSchema.parse({
      name: 'd', sizeBytes: 100 * MiB, table: 'dos',
      partitions: [
        { id: 'p1', number: 1, sizeBytes: 10 * MiB, type: '83', content: none },
        { id: 'p2', number: 2, sizeBytes: 5 * MiB, type: '5', content: none },
        { id: 'p5', number: 5, sizeBytes: 10 * MiB, type: '83', logical: true, content: none },
        { id: 'p6', number: 6, sizeBytes: 10 * MiB, type: '83', logical: true, content: none },
        { id: 'p3', number: 3, sizeBytes: 10 * MiB, type: '83', content: none },
      ],
    });
    expect(placePartitions(disk, 100 * MiB, 512).map((p) => [p.partition.number, p.startBytes / MiB, p.sizeBytes / MiB])).toEqual([
      [1, 1, 10],
      [2, 11, 22],
      [3, 33, 10],
      [5, 12, 10],
      [6, 23, 10],
    ]);
  });

  it('refuses a layout that does not fit with SMS.1315 and the figures (GPT keeps its backup table at the end)', () => {
    const disk = DiskSchema.parse({ name: 'small', sizeBytes: 0, table: 'gpt', partitions: [{ id: 'a', number: 1, sizeBytes: 15 * MiB, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', content: none }] });
    expect(() => placePartitions(disk, 16 * MiB, 512)).toThrow(FerryError);
    expect(() => placePartitions(disk, 16 * MiB, 512)).toThrow(/small: its partitions need 16777216 bytes \(16\.0 MiB\), the disk has 16760320 usable/);
    expect(placePartitions(disk, 17 * MiB, 512)).toHaveLength(1);
  });
});

describe('sfdiskScript', () => {
  it('writes the label, its id, and each partition with its number, type, PARTUUID, name and attributes (GPT) or boot flag (MBR)', () => {
    const gpt = DiskSchema.parse({
      name: 'd', sizeBytes: 0, table: 'gpt', tableId: '6E1A3C2B-0D4F-4B8A-9C7E-1F2D3A4B5C6D',
      partitions: [{ id: 'a', number: 2, sizeBytes: MiB, type: '21686148-6449-6E6F-744E-656564454649', name: 'bios "boot"', partUuid: 'D3B1A0C2-4E5F-4A6B-9C8D-7E6F5A4B3C2D', attrs: ['LegacyBIOSBootable', 'GUID:63'], content: none }],
    });
    expect(sfdiskScript(gpt, '/dev/loop7', placePartitions(gpt, 8 * MiB, 512), 512)).toBe(
      'label: gpt\nlabel-id: 6E1A3C2B-0D4F-4B8A-9C7E-1F2D3A4B5C6D\nunit: sectors\n\n' +
        '/dev/loop7p2 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, uuid=D3B1A0C2-4E5F-4A6B-9C8D-7E6F5A4B3C2D, name="bios _boot_", attrs="LegacyBIOSBootable GUID:63"\n',
    );
    const dos = DiskSchema.parse({ name: 'd', sizeBytes: 0, table: 'dos', partitions: [{ id: 'a', number: 1, sizeBytes: MiB, type: '83', bootable: true, content: none }] });
    expect(sfdiskScript(dos, '/dev/sdb', placePartitions(dos, 8 * MiB, 512), 512)).toBe('label: dos\nunit: sectors\n\n/dev/sdb1 : start=2048, size=2048, type=83, bootable\n');
  });
});
