// planTargetLayout: the source's layout fitted onto the receiver's disks —
// grown into a larger disk, shrunk toward used space at file level, never
// shrunk at block level — plus the whole-disk test and the layout hash.

import { describe, expect, it } from 'vitest';
import { placePartitions } from '../../../src/layout/geometry.js';
import type { Layout } from '../../../src/layout/model.js';
import { isWholeDiskCopy, layoutHash, planTargetLayout } from '../../../src/layout/plan.js';
import { validateLayout } from '../../../src/layout/validate.js';
import { MIB, disksOf, labLayout, refusal } from './lab-layout.js';

const sizes = (l: Layout, disk: number) => Object.fromEntries(l.disks[disk]!.partitions.map((p) => [p.id, p.sizeBytes / MIB]));

describe('planTargetLayout', () => {
  it('on disks of the same size keeps every start in block mode (the whole disk can be copied); both modes grow into the free tail', () => {
    const src = labLayout();
    const same = planTargetLayout(src, disksOf(920, 568), 'block');
    expect(sizes(same, 0)).toEqual(sizes(src, 0)); // swap ends disk0: nothing grows
    expect(sizes(same, 1)).toEqual({ ...sizes(src, 1), disk1p2: 207, disk1p6: 105 }); // the extended partition and /opt end disk1
    expect(same.disks[1]!.partitions.map((p) => p.startBytes)).toEqual(src.disks[1]!.partitions.map((p) => p.startBytes));
    validateLayout(same, disksOf(920, 568), 'block');
    // the lab leaves 1 MiB (after GPT's tail) and 5 MiB unpartitioned at the ends of its disks
    const grown = planTargetLayout(src, disksOf(920, 568), 'file');
    expect(sizes(grown, 0)).toEqual({ ...sizes(src, 0), disk0p5: 301 });
    expect(sizes(grown, 1)).toEqual({ ...sizes(src, 1), disk1p2: 207, disk1p6: 105 });
    validateLayout(grown, disksOf(920, 568), 'file');
    const block = planTargetLayout(src, disksOf(920, 568), 'block');
    expect(block.disks.map((d, i) => isWholeDiskCopy(src.disks[i]!, d))).toEqual([true, true]);
    const file = planTargetLayout(src, disksOf(920, 568), 'file');
    expect(file.disks[0]!.partitions.every((p) => p.startBytes === undefined)).toBe(true);
  });

  it('file level, larger disk: the last growable partition takes the space (btrfs before the swap; the last logical and its extended)', () => {
    const t = planTargetLayout(labLayout(), disksOf(2048, 1024), 'file');
    expect(sizes(t, 0)).toMatchObject({ disk0p4: 320, disk0p5: 300 + 2048 - 918 - 1, disk0p6: 32 });
    // disk1: p3 (the PV) is last on the disk, but not growable: /opt (p6) and its extended p2 grow
    expect(sizes(t, 1)).toMatchObject({ disk1p2: 202 + 1024 - 563, disk1p6: 100 + 1024 - 563, disk1p3: 40 });
    validateLayout(t, disksOf(2048, 1024), 'file');
    expect(placePartitions(t.disks[0]!, 512).neededBytes).toBeLessThanOrEqual(2048 * MIB);
  });

  it('block level, larger disk: starts kept; only a growable partition that ends last grows (not the swap ending disk0; /opt and its extended ending disk1)', () => {
    const src = labLayout();
    const t = planTargetLayout(src, disksOf(2048, 1024), 'block');
    expect(sizes(t, 0)).toEqual(sizes(src, 0));
    expect(sizes(t, 1)).toEqual({ ...sizes(src, 1), disk1p2: 202 + 1024 - 563, disk1p6: 100 + 1024 - 563 });
    expect(t.disks.map((d, i) => isWholeDiskCopy(src.disks[i]!, d, [2048 * MIB, 1024 * MIB][i]))).toEqual([true, true]);
    // without the swap, / … btrfs ends disk0 and grows in place
    const noSwap = labLayout();
    noSwap.disks[0]!.partitions.pop();
    const g = planTargetLayout(noSwap, disksOf(2048, 1024), 'block');
    expect(sizes(g, 0).disk0p5).toBe(300 + 2048 - 886 - 1);
    expect(g.disks[0]!.partitions.map((p) => p.startBytes)).toEqual(noSwap.disks[0]!.partitions.map((p) => p.startBytes));
    expect(isWholeDiskCopy(noSwap.disks[0]!, g.disks[0]!, 2048 * MIB)).toBe(true);
    validateLayout(g, disksOf(2048, 1024), 'block');
  });

  it('file level, smaller disk: file systems shrink toward used + margin in proportion to their slack, and the result validates', () => {
    const src = labLayout();
    const t = planTargetLayout(src, disksOf(800, 500), 'file');
    validateLayout(t, disksOf(800, 500), 'file');
    const s0 = sizes(t, 0);
    expect(s0.disk0p1).toBe(1); // BIOS boot, ESP and swap keep their sizes
    expect(s0.disk0p2).toBe(64);
    expect(s0.disk0p6).toBe(32);
    // each gives in proportion to its slack above max(fs minimum, used + 64 MiB): xfs 20 MiB of slack, /boot 116, btrfs 191
    expect(s0).toMatchObject({ disk0p3: 158, disk0p4: 312, disk0p5: 231 });
    expect(placePartitions(t.disks[0]!, 512).neededBytes).toBeLessThanOrEqual(800 * MIB);
    expect(placePartitions(t.disks[1]!, 512).neededBytes).toBeLessThanOrEqual(500 * MIB);
    expect(t.disks[1]!.partitions.find((p) => p.id === 'disk1p2')!.sizeBytes).toBe(
      2 * MIB + t.disks[1]!.partitions.filter((p) => p.logical).reduce((a, p) => a + p.sizeBytes, 0),
    );
  });

  it('file level, far too small: SMS.1315 with what is needed, what the disk has and what shrinking frees', () => {
    const e = refusal(() => planTargetLayout(labLayout(), disksOf(580, 568), 'file'));
    expect(e.code).toBe('SMS.1315');
    expect(e.message).toMatch(/disk disk0: the source's partitions need \d+ bytes .*the target disk has 608174080 bytes .*frees only \d+ bytes/);
  });

  it('block level never shrinks: SMS.1315 that says to migrate at file level', () => {
    const e = refusal(() => planTargetLayout(labLayout(), disksOf(900, 568), 'block'));
    expect(e.code).toBe('SMS.1315');
    expect(e.message).toContain('never shrinks');
    expect(e.message).toContain('file level');
  });

  it('SMS.0411 when the receiver lacks a disk of the source', () => {
    expect(refusal(() => planTargetLayout(labLayout(), [disksOf(920, 568)[0]!], 'file')).code).toBe('SMS.0411');
  });
});

describe('isWholeDiskCopy', () => {
  it('is false when a start moves, a middle partition changes size, or the target disk is smaller than the source disk', () => {
    const src = labLayout().disks[0]!;
    const moved = structuredClone(src);
    moved.partitions[3]!.startBytes! += MIB;
    expect(isWholeDiskCopy(src, moved)).toBe(false);
    const grownMiddle = structuredClone(src);
    grownMiddle.partitions[2]!.sizeBytes += MIB;
    expect(isWholeDiskCopy(src, grownMiddle)).toBe(false);
    expect(isWholeDiskCopy(src, structuredClone(src), 900 * MIB)).toBe(false);
  });
});

describe('layoutHash', () => {
  it('is stable across key order, source devices and used space, and changes with anything laid out', () => {
    const a = labLayout();
    const b = labLayout();
    b.disks[0]!.sourceDevice = '/dev/vda';
    const c = b.disks[0]!.partitions[2]!.content;
    if (c.kind === 'filesystem') c.usedBytes += 12345;
    const reordered = JSON.parse(JSON.stringify(a, Object.keys(a).reverse())) as Layout;
    expect(layoutHash(b)).toBe(layoutHash(a));
    expect(layoutHash({ ...reordered, disks: a.disks, volumeGroups: a.volumeGroups })).toBe(layoutHash(a));
    expect(layoutHash(a)).toMatch(/^[0-9a-f]{64}$/);
    b.disks[0]!.partitions[2]!.sizeBytes += MIB;
    expect(layoutHash(b)).not.toBe(layoutHash(a));
  });
});
