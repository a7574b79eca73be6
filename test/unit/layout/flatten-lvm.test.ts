// flattenLvm: without device-mapper each logical volume becomes a plain
// partition in its volume group's place, keeping its id and content, and a
// note says so.

import { describe, expect, it } from 'vitest';
import { flattenLvm } from '../../../src/layout/flatten-lvm.js';
import { LayoutSchema, type Layout } from '../../../src/layout/model.js';
import { validateLayout } from '../../../src/layout/validate.js';
import { MIB, disksOf, labLayout, labUuid } from './lab-layout.js';

const rows = (l: Layout, disk: number) => l.disks[disk]!.partitions.map((p) => [p.id, p.number, p.logical, p.type, p.sizeBytes / MIB, p.content.kind]);

describe('flattenLvm', () => {
  it('MBR with room for primaries: the PV partition (3) gives its place to both LVs as partitions 3 and 4', () => {
    const { layout, notes } = flattenLvm(labLayout());
    expect(rows(layout, 1)).toEqual([
      ['disk1p1', 1, false, '83', 320, 'filesystem'],
      ['disk1p2', 2, false, '5', 202, 'none'],
      ['vg0-data', 3, false, '83', 8, 'none'],
      ['vg0-logs-1', 4, false, '83', 8, 'none'],
      ['disk1p5', 5, true, '83', 100, 'filesystem'],
      ['disk1p6', 6, true, '83', 100, 'filesystem'],
    ]);
    expect(layout.volumeGroups).toEqual([]);
    expect(notes).toEqual([
      'vg0/data became partition disk1p3 (no device-mapper on the receiver)',
      'vg0/logs-1 became partition disk1p4 (no device-mapper on the receiver)',
    ]);
    expect(layout.disks[1]!.partitions[2]!.sourceDevice).toBe('/dev/vg0/data');
    expect(() => LayoutSchema.parse(layout)).not.toThrow();
    validateLayout(layout, disksOf(920, 568), 'file');
  });

  it('MBR with four primaries already: the LVs become logical partitions of the extended one, numbered on', () => {
    const l = labLayout();
    l.volumeGroups[0]!.logicalVolumes.push({ id: 'vg0-tmp', name: 'tmp', sizeBytes: 8 * MIB, sourceDevice: '', content: { kind: 'swap', uuid: labUuid('swap', 'vg0-tmp'), label: '' } });
    const { layout } = flattenLvm(l);
    expect(rows(layout, 1).map((r) => r.slice(0, 4))).toEqual([
      ['disk1p1', 1, false, '83'],
      ['disk1p2', 2, false, '5'],
      ['disk1p5', 5, true, '83'],
      ['disk1p6', 6, true, '83'],
      ['vg0-data', 7, true, '83'],
      ['vg0-logs-1', 8, true, '83'],
      ['vg0-tmp', 9, true, '82'],
    ]);
    validateLayout(layout, disksOf(920, 568), 'file');
  });

  it('GPT: the first LV takes the PV number, the others the next free ones, with the Linux types and the LV names', () => {
    const l = labLayout();
    const pv = l.disks[0]!.partitions[5]!; // the swap partition becomes a PV of vg0
    pv.content = { kind: 'lvm-pv', vg: 'vg0', uuid: '' };
    l.disks[1]!.partitions = l.disks[1]!.partitions.filter((p) => p.id !== 'disk1p3');
    const { layout, notes } = flattenLvm(l);
    expect(rows(layout, 0).slice(5)).toEqual([
      ['vg0-data', 6, false, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', 8, 'none'],
      ['vg0-logs-1', 7, false, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', 8, 'none'],
    ]);
    expect(layout.disks[0]!.partitions[6]!.name).toBe('logs-1');
    expect(notes[1]).toBe('vg0/logs-1 became partition disk0p7 (no device-mapper on the receiver)');
  });

  it('a VG spanning two PVs fills the first PV place, then the second', () => {
    const l = labLayout();
    l.volumeGroups[0]!.logicalVolumes = [
      { id: 'big-1', name: 'big1', sizeBytes: 24 * MIB, sourceDevice: '', content: { kind: 'none' } },
      { id: 'big-2', name: 'big2', sizeBytes: 24 * MIB, sourceDevice: '', content: { kind: 'none' } },
    ];
    l.disks[0]!.partitions[5]!.content = { kind: 'lvm-pv', vg: 'vg0', uuid: '' };
    const { notes } = flattenLvm(l);
    expect(notes).toEqual([
      'vg0/big1 became partition disk0p6 (no device-mapper on the receiver)',
      'vg0/big2 became partition disk1p3 (no device-mapper on the receiver)',
    ]);
  });
});
