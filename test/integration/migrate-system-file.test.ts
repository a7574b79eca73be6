// `ferry migrate --system` at file level, the way an operator runs it: the
// issue's two-disk source server (test/helpers/system-lab.ts) mounted at a
// source root, a real `ferry receive --disk` child holding two blank image
// disks — disk0 larger than the source's disk0, disk1 smaller than its disk1
// (partitions shrunk toward their used space) — and the agent as a child
// process. Afterwards the target images are inspected as an operator would:
// `sfdisk --json` shows the source's table types, partition types, names,
// flags; `blkid` its file system types, UUIDs and labels; `btrfs subvolume
// list` its subvolumes; rsync finds nothing to change between each source
// file system and its copy; the ESP (block-copied) is byte for byte the
// source's. First, a --layout naming a disk the receiver lacks is refused
// with SMS.0411 before anything is written.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/requirements.js';
import { sh } from '../helpers/loop.js';
import { sha256Of, startReceiver, type RunningReceiver } from '../helpers/block.js';
import { runFerry } from '../helpers/cli.js';
import { SYSTEM_LAB_TOOLS, blankImage, buildSourceServer, type SourceServer } from '../helpers/system-lab.js';
import { AttachedImage, ReadOnlyMounts, blkid, diffLabAndTarget, expectedUuids, migrateSystem, sfdiskJson, systemArgs, type SystemSummary } from '../helpers/system-migrate.js';

const env = needs({ root: true, tools: [...SYSTEM_LAB_TOOLS, 'rsync', 'partx'] });
const MIB = 1 << 20;

describe.runIf(env.ok)('ferry migrate --system --mode file', () => {
  let dir: string;
  let lab: SourceServer;
  let recv: RunningReceiver;
  const images: string[] = [];
  const attached: AttachedImage[] = [];
  let mounts: ReadOnlyMounts | undefined;
  let args: string[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-system-file-'));
    lab = await buildSourceServer(join(dir, 'source'));
    images.push(blankImage(join(dir, 'target'), 'disk0', 1100 * MIB)); // source disk0: 920 MiB
    images.push(blankImage(join(dir, 'target'), 'disk1', 500 * MIB)); // source disk1: 568 MiB
    recv = await startReceiver(join(dir, 'receiver'), [], images.flatMap((img, i) => ['--disk', `disk${i}=${img}`]));
    args = systemArgs(recv.info, { sourceRoot: lab.root, sourceDisks: lab.disks.map((d) => d.device), stateDir: join(dir, 'agent'), migrationId: 'm-lab' });
  }, 90_000);

  afterAll(async () => {
    mounts?.release();
    for (const a of attached) a.release();
    await recv?.stop();
    lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a --layout naming a disk the receiver was not given, with SMS.0411, before writing anything', async () => {
    const layoutFile = join(dir, 'target-server.json');
    writeFileSync(
      layoutFile,
      JSON.stringify({
        name: 'lab',
        vm_id: 'lab-target',
        disks: [
          {
            disk_id: 'disk7',
            name: 'Disk 0',
            size: 1100 * MIB,
            used_size: 0,
            device_use: 'BOOT',
            partition_style: 'GPT',
            physical_volumes: [{ index: 3, name: '/boot', size: 200 * MIB, file_system: 'ext4', mount_point: '/boot', uuid: lab.parts[2]!.uuid, device_use: 'BOOT' }],
          },
        ],
      }),
    );
    const r = await runFerry([...args, '--layout', layoutFile]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/SMS\.0411/);
    expect(r.stderr).toMatch(/disk7/);
    // Nothing written: both images still have no partition table and hold only zeros.
    for (const img of images) {
      expect(() => sfdiskJson(img)).toThrow();
      expect(sh('sh', ['-c', `cmp -n ${4 * MIB} ${img} /dev/zero || true`])).toBe('');
    }
  });

  let summary: SystemSummary;

  it('lays out the blank disks and copies every file system; swap, BIOS-less gaps and metadata-only LVs are listed as not copied', async () => {
    summary = await migrateSystem(args);
    expect(summary.layoutState).toBe('created');
    const copied = summary.volumes.filter((v) => v.summary);
    const failed = summary.volumes.filter((v) => v.error);
    expect(failed).toEqual([]);
    // Every file system of the source is a copied volume; the btrfs one as its top level and three subvolumes.
    expect(copied.map((v) => `${v.id}:${v.kind}`).sort()).toEqual(
      [
        'disk0p1:block', // BIOS boot: bytes
        'disk0p2:block', // ESP (vfat): bytes
        'disk0p3:file',
        'disk0p4:file',
        'disk0p5:file',
        'disk0p5:@:file',
        'disk0p5:@home:file',
        'disk0p5:@snap-1:file',
        'disk1p1:file',
        'disk1p5:file',
        'disk1p6:file',
      ].sort(),
    );
    const skipped = Object.fromEntries(summary.volumes.filter((v) => v.skipped).map((v) => [v.id, v.skipped]));
    expect(skipped['disk0p6']).toMatch(/^swap/);
    expect(Object.values(skipped).filter((r) => /no file system|not active|LVM/.test(r!)).length).toBeGreaterThanOrEqual(2);
  });

  it('the target tables have the source table types, partition types, names and flags; disk1 shrunk to fit, disk0 grown', () => {
    for (const [i, d] of lab.disks.entries()) {
      const src = sfdiskJson(d.device);
      const dst = sfdiskJson(images[i]!);
      expect(dst.label).toBe(src.label);
      expect(dst.id.toLowerCase()).toBe(src.id.toLowerCase());
      const strip = (p: { node: string; type: string; name?: string; attrs?: string; bootable?: boolean; uuid?: string }) => ({
        n: Number(p.node.match(/(\d+)$/)![1]),
        type: p.type.toUpperCase(),
        name: p.name ?? '',
        attrs: p.attrs ?? '',
        bootable: p.bootable ?? false,
      });
      // LVs flattened into partitions come after the source's own (no device-mapper here): compare the source's numbers.
      const dstByNumber = new Map(dst.partitions.map((p) => [strip(p).n, strip(p)]));
      for (const p of src.partitions.map(strip)) {
        if (p.type === '8E') continue; // the LVM PV: its LVs became partitions
        expect(dstByNumber.get(p.n)).toEqual(p);
      }
    }
    const sum = (t: ReturnType<typeof sfdiskJson>) => t.partitions.reduce((a, p) => a + p.size, 0);
    expect(sum(sfdiskJson(images[1]!))).toBeLessThan(sum(sfdiskJson(lab.disks[1]!.device)));
    expect(sum(sfdiskJson(images[0]!))).toBeGreaterThan(sum(sfdiskJson(lab.disks[0]!.device)));
  });

  it('blkid shows the source file system types, UUIDs and labels; btrfs has the subvolumes; rsync finds nothing to change', async () => {
    const disk0 = new AttachedImage(images[0]!, [1, 2, 3, 4, 5, 6]);
    const disk1 = new AttachedImage(images[1]!, [1, 5, 6]);
    attached.push(disk0, disk1);
    const m = (mounts = new ReadOnlyMounts(dir));
    const target = (disk: string, n: number) => (disk === 'disk0' ? disk0 : disk1).part(n);
    // The UUIDs are the source's (a btrfs one may be new where the receiver runs beside the source: the notes say so).
    const uuids = expectedUuids(lab, summary);
    for (const p of lab.parts.filter((x) => x.fsType && x.fsType !== 'LVM2_member')) {
      const id = `${p.disk}p${p.number}`;
      const t = blkid(target(p.disk, p.number));
      expect({ id, type: t.TYPE, uuid: t.UUID, label: t.LABEL }).toEqual({ id, type: p.fsType, uuid: uuids[id], label: p.label });
    }
    const renewed = lab.parts.filter((p) => p.uuid && uuids[`${p.disk}p${p.number}`] !== p.uuid).map((p) => p.fsType);
    expect(renewed.filter((t) => t !== 'btrfs')).toEqual([]);

    // The ESP is copied as bytes: the target partition starts with the source's 64 MiB.
    const esp = lab.parts.find((p) => p.fsType === 'vfat')!;
    expect(await sha256Of(target('disk0', esp.number), esp.sizeBytes)).toBe(await sha256Of(esp.device, esp.sizeBytes));

    // The btrfs file system has the source's subvolumes (the snapshot now writable) and default.
    const btrfs = lab.parts.find((p) => p.fsType === 'btrfs')!;
    const top = m.mount(target(btrfs.disk, btrfs.number), 'btrfs', ['subvolid=5']);
    const subvols = sh('btrfs', ['subvolume', 'list', top]);
    for (const s of lab.btrfs.subvolumes) expect(subvols).toMatch(new RegExp(`path ${s.path}\n`));
    expect(sh('btrfs', ['subvolume', 'get-default', top])).toMatch(/path @\n/);

    // Each file system of the source against its copy: rsync finds nothing to change.
    const diffs = diffLabAndTarget(lab, target, m);
    expect(diffs).toEqual(Object.fromEntries(Object.keys(diffs).map((k) => [k, ''])));
  });
});
