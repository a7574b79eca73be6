// discoverSourceLayout on issue 15's two-disk test server (helpers/system-lab.ts),
// built on loop devices and mounted at a source root: the layout it reads
// must say what the lab made, field by field — table types, partition
// types, names, flags and geometry, file system types, UUIDs and labels,
// mount points relative to the root, used space, Btrfs subvolumes (the
// read-only snapshot and the default), the LVM volume group and its LVs.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverSourceLayout } from '../../src/discovery/linux/source-layout.js';
import { LayoutSchema, type Layout, type Partition } from '../../src/layout/model.js';
import { isWholeDiskCopy, planTargetLayout } from '../../src/layout/plan.js';
import { validateLayout } from '../../src/layout/validate.js';
import { needs } from '../helpers/requirements.js';
import { buildSourceServer, SYSTEM_LAB_TOOLS, type SourceServer } from '../helpers/system-lab.js';

const env = needs({ root: true, tools: [...SYSTEM_LAB_TOOLS, 'pvs', 'lvs'] });
const MIB = 1 << 20;

describe.runIf(env.ok)('discoverSourceLayout on the two-disk test server', () => {
  let dir: string;
  let server: SourceServer;
  let layout: Layout;
  let warnings: string[];
  const part = (id: string): Partition => {
    const p = layout.disks.flatMap((d) => d.partitions).find((x) => x.id === id);
    if (!p) throw new Error(`no partition ${id} in the layout`);
    return p;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-source-layout-'));
    server = await buildSourceServer(dir);
    ({ layout, warnings } = await discoverSourceLayout({ sourceRoot: server.root, sourceDisks: server.disks.map((d) => d.device) }));
  }, 60_000);
  afterAll(() => {
    server?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is a valid layout of both disks, named disk0 and disk1 in the order given, with their devices', () => {
    expect(() => LayoutSchema.parse(layout)).not.toThrow();
    expect(layout.disks.map((d) => [d.name, d.table, d.sizeBytes, d.sourceDevice])).toEqual([
      ['disk0', 'gpt', 920 * MIB, server.disks[0]!.device],
      ['disk1', 'dos', 568 * MIB, server.disks[1]!.device],
    ]);
    expect(layout.disks[0]!.tableId).toMatch(/^[0-9A-F-]{36}$/);
    expect(layout.disks[1]!.tableId).toMatch(/^0x[0-9a-f]{8}$/);
  });

  it('reads every partition: number, size, type, GPT name and flags, MBR active flag and logical partitions', () => {
    for (const lab of server.parts) {
      const p = part(`${lab.disk}p${lab.number}`);
      expect({ number: p.number, size: p.sizeBytes, type: p.type, name: p.name, attrs: p.attrs, logical: p.logical, bootable: p.bootable, dev: p.sourceDevice }).toEqual({
        number: lab.number,
        size: lab.sizeBytes,
        type: lab.type,
        name: lab.name,
        attrs: lab.attrs,
        logical: lab.logical,
        bootable: lab.bootable === true,
        dev: lab.device,
      });
      expect(p.sourceSizeBytes).toBe(lab.sizeBytes);
    }
    expect(part('disk0p1').startBytes).toBe(1 * MIB);
    expect(part('disk1p5').startBytes).toBe(part('disk1p2').startBytes! + MIB); // behind its EBR
    expect(part('disk0p2').partUuid).toMatch(/^[0-9A-F-]{36}$/);
    expect(part('disk1p1').partUuid).toBe('');
  });

  it('reads each file system: type, UUID, label, mount point relative to the root, used space', () => {
    for (const lab of server.parts.filter((p) => ['vfat', 'ext4', 'xfs', 'btrfs'].includes(p.fsType))) {
      const c = part(`${lab.disk}p${lab.number}`).content;
      expect(c.kind, `${lab.disk}p${lab.number}`).toBe('filesystem');
      if (c.kind !== 'filesystem') continue;
      expect({ fsType: c.fsType, uuid: c.uuid, label: c.label, mountPoint: c.mountPoint }).toEqual({
        fsType: lab.fsType,
        uuid: lab.uuid,
        label: lab.label,
        mountPoint: lab.mountPoint,
      });
      expect(c.usedBytes).toBeGreaterThan(0);
      if (lab.fsType !== 'vfat') expect(c.usedBytes).toBeLessThan(lab.sizeBytes);
    }
    expect(part('disk0p6').content).toEqual({ kind: 'swap', uuid: server.parts[5]!.uuid, label: 'swap' });
    expect(part('disk0p1').content).toEqual({ kind: 'none' });
    expect(part('disk1p2').content).toEqual({ kind: 'none' });
  });

  it('the ESP is not mounted here (no vfat): it counts as full, and says nothing more', () => {
    const c = part('disk0p2').content;
    expect(c.kind === 'filesystem' && c.usedBytes).toBe(64 * MIB);
    expect(warnings.filter((w) => /disk0|loop/.test(w) && /vfat/.test(w))).toEqual([]);
  });

  it('lists the btrfs subvolumes with their mount points, the read-only snapshot and the default', () => {
    const c = part('disk0p5').content;
    if (c.kind !== 'filesystem') throw new Error('btrfs partition has no file system');
    expect(c.subvolumes).toEqual([
      { path: '@', readOnlyOnSource: false, mountPoint: '/srv' },
      { path: '@home', readOnlyOnSource: false, mountPoint: '/home' },
      { path: '@snap-1', readOnlyOnSource: true, mountPoint: '' },
    ]);
    expect(c.defaultSubvolume).toBe('@');
  });

  it('reads the volume group of the 8e partition and its two logical volumes (inactive: no file system)', () => {
    expect(part('disk1p3').content).toMatchObject({ kind: 'lvm-pv', vg: server.vg.name });
    expect(layout.volumeGroups).toHaveLength(1);
    const vg = layout.volumeGroups[0]!;
    expect(vg.name).toBe(server.vg.name);
    expect(vg.uuid).not.toBe('');
    expect(vg.extentBytes).toBe(4 * MIB);
    expect(vg.logicalVolumes.map((lv) => [lv.id, lv.name, lv.sizeBytes, lv.content.kind])).toEqual(
      server.vg.lvs.map((lv) => [`${server.vg.name}-${lv.name}`, lv.name, lv.sizeBytes, 'none']),
    );
    expect(vg.logicalVolumes[0]!.sourceDevice).toBe(`/dev/${server.vg.name}/data`);
  });

  it('plans onto larger and smaller receiver disks, and the receiver\'s check accepts the plan', () => {
    const disks = (a: number, b: number) => [
      { name: 'disk0', sizeBytes: a * MIB, sectorBytes: 512 },
      { name: 'disk1', sizeBytes: b * MIB, sectorBytes: 512 },
    ];
    for (const [mode, a, b] of [['file', 1024, 768], ['file', 800, 500], ['block', 1024, 768]] as const) {
      const planned = planTargetLayout(layout, disks(a, b), mode);
      expect(() => validateLayout(planned, disks(a, b), mode), `${mode} ${a}/${b}`).not.toThrow();
    }
    expect(planTargetLayout(layout, disks(1024, 768), 'block').disks.map((d, i) => isWholeDiskCopy(layout.disks[i]!, d, [1024, 768][i]! * MIB))).toEqual([true, true]);
  });

  it('has no warning about the lab disks', () => {
    expect(warnings).toEqual([]);
  });
});
