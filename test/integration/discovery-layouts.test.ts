// `ferry discover --include-loop --json`, run as a real child process, against
// real layouts on loop devices, compared with the ground truth that blkid,
// lsblk, lvs/vgs and btrfs report for the same devices:
//   disk A (GPT): ext4 (mounted), swap, Btrfs (mounted, subvolumes, a snapshot,
//                 a subvolume mounted on its own), LVM PV
//   disk B (MBR): xfs (mounted)
//   disk C (no partition table): a whole-disk LVM PV
//   a VG spanning A's PV partition and disk C, holding two (inactive) LVs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';
import { runFerry } from '../helpers/cli.js';
import { sourceBodySchema, type SourceBody, type ServerDisk } from '../../src/sms/schemas/source.js';

const env = needs({
  root: true,
  tools: ['sgdisk', 'parted', 'mkfs.ext4', 'mkfs.xfs', 'mkfs.btrfs', 'mkswap', 'btrfs', 'pvcreate', 'vgcreate', 'lvcreate', 'blkid', 'lsblk', 'partx'],
});
const NOACT = ['--config', 'global { activation = 0 }'];
const MiB = 1024 * 1024;

/** Make the kernel see a fresh partition table (BLKRRPART alone does not on this kernel's loop driver; partx does). */
function reread(d: LoopDisk): void {
  sh('partx', ['-u', d.device]);
  for (let i = 0; i < 100 && !existsSync(d.part(1)); i++) sh('sleep', ['0.05']);
}

function blkid(dev: string): Record<string, string> {
  let out = '';
  try {
    out = sh('blkid', ['-p', '-o', 'export', dev]);
  } catch {
    /* nothing there */
  }
  return Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

interface LsblkDev {
  name: string;
  size: number;
  mountpoint?: string | null;
  mountpoints?: (string | null)[];
  children?: LsblkDev[];
}
function lsblk(dev: string): LsblkDev {
  const j = JSON.parse(sh('lsblk', ['-J', '-b', '-p', '-o', 'NAME,SIZE,MOUNTPOINT', dev])) as { blockdevices: LsblkDev[] };
  return j.blockdevices[0]!;
}

describe.runIf(env.ok)('ferry discover on loop-device layouts', () => {
  const vg = `ferrydisc${process.pid}${Math.floor(Math.random() * 1e6)}`;
  let a: LoopDisk;
  let b: LoopDisk;
  let c: LoopDisk;
  let ext4Mnt = '';
  let btrfsMnt = '';
  let subvolMnt = '';
  let xfsMnt = '';
  let body: SourceBody;
  let warnings: string[] = [];

  beforeAll(() => {
    a = LoopDisk.create(420 * MiB, 'ferry-disc-a-');
    b = LoopDisk.create(340 * MiB, 'ferry-disc-b-');
    c = LoopDisk.create(64 * MiB, 'ferry-disc-c-');

    sh('sgdisk', ['-n1:0:+64M', '-t1:8300', '-n2:0:+32M', '-t2:8200', '-n3:0:+200M', '-t3:8300', '-n4:0:+64M', '-t4:8e00', a.device]);
    reread(a);
    sh('mkfs.ext4', ['-q', '-L', 'extlab', a.part(1)]);
    sh('mkswap', [a.part(2)]);
    sh('mkfs.btrfs', ['-q', '-f', '-L', 'btrlab', a.part(3)]);

    sh('parted', ['-s', b.device, 'mklabel', 'msdos', 'mkpart', 'primary', 'xfs', '1MiB', '100%']);
    reread(b);
    sh('mkfs.xfs', ['-q', '-f', b.part(1)]);

    sh('pvcreate', ['-q', ...NOACT, a.part(4), c.device]);
    sh('vgcreate', ['-q', ...NOACT, vg, a.part(4), c.device]);
    sh('lvcreate', ['-q', ...NOACT, '-an', '-Zn', '-L', '48M', '-n', 'data', vg]);
    sh('lvcreate', ['-q', ...NOACT, '-an', '-Zn', '-L', '40M', '-n', 'logs-1', vg]);

    // An ext4 inside the inactive LV "data", written at its first extent on the PV (as lvs places it).
    const seg = JSON.parse(sh('lvs', ['--segments', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'seg_start_pe,seg_pe_ranges', `${vg}/data`])).report[0].seg[0];
    const [, pv, firstPe] = /^(.+):(\d+)-\d+$/.exec(seg.seg_pe_ranges as string)!;
    const peStart = Number(JSON.parse(sh('pvs', ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'pe_start', pv!])).report[0].pv[0].pe_start);
    const extent = Number(JSON.parse(sh('vgs', ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_extent_size', vg])).report[0].vg[0].vg_extent_size);
    sh('mkfs.ext4', ['-q', '-F', '-E', `offset=${peStart + Number(firstPe) * extent}`, pv!, '48M']);

    ext4Mnt = a.mount(a.part(1));
    writeFileSync(join(ext4Mnt, 'payload'), Buffer.alloc(3 * MiB, 7));
    btrfsMnt = a.mount(a.part(3));
    sh('btrfs', ['subvolume', 'create', join(btrfsMnt, 'home')]);
    sh('btrfs', ['subvolume', 'create', join(btrfsMnt, 'home', 'nested')]);
    sh('btrfs', ['subvolume', 'snapshot', join(btrfsMnt, 'home'), join(btrfsMnt, 'home-snap')]);
    subvolMnt = a.mount(a.part(3), ['subvol=home']);
    xfsMnt = b.mount(b.part(1));
  }, 120_000);

  afterAll(() => {
    const quietly = (f: () => void) => {
      try {
        f();
      } catch {
        /* best effort: the resource may not exist */
      }
    };
    // LVM metadata first, while both PVs are still attached; then unmount and detach.
    quietly(() => sh('vgremove', ['-q', '-f', ...NOACT, vg]));
    for (const pv of [a?.part(4), c?.device]) if (pv) quietly(() => sh('pvremove', ['-q', '-ff', '-y', ...NOACT, pv]));
    for (const d of [b, a, c]) if (d) quietly(() => d.destroy());
  });

  const disk = (dev: string): ServerDisk => {
    const d = body.disks!.find((x) => x.name === dev);
    expect(d, `${dev} in ${body.disks!.map((x) => x.name).join(',')}`).toBeDefined();
    return d!;
  };

  it('runs, exits 0 and prints a body the schema accepts', async () => {
    const r = await runFerry(['discover', '--include-loop', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { body: unknown; warnings: string[] };
    body = sourceBodySchema.parse(out.body);
    warnings = out.warnings;
    expect(Array.isArray(warnings)).toBe(true);
  });

  it('reports each disk with the partition style written on it and its size', () => {
    expect(disk(a.device).partition_style).toBe('GPT');
    expect(disk(b.device).partition_style).toBe('MBR');
    expect(disk(c.device).partition_style).toBe('MBR'); // no table: reported as the API example does
    for (const d of [a, b, c]) expect(disk(d.device).size).toBe(lsblk(d.device).size);
  });

  it('reports partitions with index, name, size, file system, UUID and mount point as blkid and lsblk see them', () => {
    const truth = lsblk(a.device).children!;
    const pvs = disk(a.device).physical_volumes;
    expect(pvs.map((p) => p.name)).toEqual(truth.map((t) => t.name));
    expect(pvs.map((p) => p.index)).toEqual([1, 2, 3, 4]);
    for (const p of pvs) {
      const t = truth.find((x) => x.name === p.name)!;
      const id = blkid(p.name!);
      expect(p.size).toBe(t.size);
      expect(p.file_system).toBe(id.TYPE);
      expect(p.uuid).toBe(id.UUID);
    }
    expect(pvs.map((p) => p.file_system)).toEqual(['ext4', 'swap', 'btrfs', 'LVM2_member']);
    expect(pvs[0]!.mount_point).toBe(ext4Mnt);
    expect(pvs[2]!.mount_point).toBe(btrfsMnt); // the top level, not the subvolume mount
    const xfs = disk(b.device).physical_volumes;
    expect(xfs).toHaveLength(1);
    expect(xfs[0]).toMatchObject({ name: b.part(1), index: 1, file_system: 'xfs', uuid: blkid(b.part(1)).UUID, mount_point: xfsMnt });
  });

  it('marks LVM and Btrfs members as the API example does, and a whole-disk PV as VOLUME_GROUP', () => {
    expect(disk(a.device).physical_volumes.map((p) => p.device_use)).toEqual(['NORMAL', 'NORMAL', 'BTRFS', 'VOLUME_GROUP']);
    expect(disk(c.device).device_use).toBe('VOLUME_GROUP');
    expect(disk(c.device).physical_volumes).toEqual([]);
    expect(disk(a.device).device_use).toBe('NORMAL');
    expect(disk(a.device).os_disk).toBe(false);
  });

  it('measures used space and inodes of mounted file systems', () => {
    const ext4 = disk(a.device).physical_volumes[0]!;
    const df = sh('stat', ['-f', '-c', '%S %b %f %c %d', ext4Mnt]).trim().split(' ').map(Number);
    const [bsize, blocks, bfree, files, ffree] = df as [number, number, number, number, number];
    expect(ext4.used_size).toBe((blocks - bfree) * bsize);
    expect(ext4.used_size).toBeGreaterThanOrEqual(3 * MiB);
    expect(ext4.inode_nums).toBe(files - ffree);
    expect(ext4.inode_size).toBe(Number(/Inode size:\s+(\d+)/.exec(sh('tune2fs', ['-l', a.part(1)]))![1]));
    const xfs = disk(b.device).physical_volumes[0]!;
    expect(xfs.inode_size).toBe(512);
    // unmounted swap: no usage to measure, reported as fully used (as the example does)
    expect(disk(a.device).physical_volumes[1]!.used_size).toBe(disk(a.device).physical_volumes[1]!.size);
    // a disk's used size is what its partitions take
    expect(disk(a.device).used_size).toBe(disk(a.device).physical_volumes.reduce((n, p) => n + p.size!, 0));
  });

  it('reports the VG spanning two PVs with both LVs, as lvs and vgs do', () => {
    const g = body.volume_groups!.find((x) => x.name === vg)!;
    expect(g).toBeDefined();
    const vgsTruth = JSON.parse(sh('vgs', ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_size,vg_free', vg])).report[0].vg[0];
    expect(g.size).toBe(Number(vgsTruth.vg_size));
    expect(g.free_size).toBe(Number(vgsTruth.vg_free));
    expect(g.components!.split(';').sort()).toEqual([a.part(4), c.device].sort());
    const lvsTruth = JSON.parse(sh('lvs', ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'lv_name,lv_size,lv_dm_path', vg])).report[0].lv as {
      lv_name: string;
      lv_size: string;
      lv_dm_path: string;
    }[];
    expect(g.logical_volumes!.map((l) => l.name).sort()).toEqual(lvsTruth.map((l) => l.lv_dm_path).sort());
    expect(g.logical_volumes!.map((l) => l.name)).toContain(`/dev/mapper/${vg}-logs--1`);
    for (const l of g.logical_volumes!) expect(l.size).toBe(Number(lvsTruth.find((t) => t.lv_dm_path === l.name)!.lv_size));
    // inactive (no device-mapper here): no mount or usage, and discovery says so; the file system is read on the PV
    expect(g.logical_volumes!.every((l) => l.mount_point === '')).toBe(true);
    const data = g.logical_volumes!.find((l) => l.name === `/dev/mapper/${vg}-data`)!;
    expect(data.file_system).toBe('ext4');
    expect([128, 256]).toContain(data.inode_size);
    expect(g.logical_volumes!.find((l) => l.name.endsWith('logs--1'))!.file_system).toBe('');
    expect(warnings.some((w) => /inactive/.test(w))).toBe(true);
  });

  it('reports the Btrfs file system with its subvolumes, snapshot and mount paths, as btrfs does', () => {
    const uuid = blkid(a.part(3)).UUID!;
    const fs = body.btrfs_list!.find((x) => x.uuid === uuid)!;
    expect(fs).toBeDefined();
    expect(fs).toMatchObject({ name: a.part(3), device: a.part(3), label: 'btrlab' });
    const sup = sh('btrfs', ['inspect-internal', 'dump-super', a.part(3)]);
    const field = (k: string) => Number(new RegExp(`^${k}\\s+(\\d+)`, 'm').exec(sup)![1]);
    expect(fs.nodesize).toBe(field('nodesize'));
    expect(fs.sectorsize).toBe(field('sectorsize'));
    expect(fs.size).toBe(field('total_bytes'));
    const df = sh('btrfs', ['filesystem', 'df', '-b', btrfsMnt]);
    expect(fs.data_profile).toBe(/^Data, ([^:]+):/m.exec(df)![1]);
    expect(fs.metadata_profile).toBe(/^Metadata, ([^:]+):/m.exec(df)![1]);
    expect(fs.system_profile).toBe(/^System, ([^:]+):/m.exec(df)![1]);
    expect(fs.default_subvolid).toBe('5');

    const listed = sh('btrfs', ['subvolume', 'list', btrfsMnt])
      .trim()
      .split('\n')
      .map((l) => ({ id: /^ID (\d+)/.exec(l)![1]!, path: / path (.*)$/.exec(l)![1]! }));
    expect(fs.subvolumn.map((s) => [s.subvol_id, s.subvol_name])).toEqual(listed.map((l) => [l.id, l.path]));
    const byName = Object.fromEntries(fs.subvolumn.map((s) => [s.subvol_name, s]));
    const snapshots = sh('btrfs', ['subvolume', 'list', '-s', btrfsMnt]);
    expect(snapshots).toMatch(/path home-snap$/m);
    expect(byName['home-snap']!.is_snapshot).toBe('true');
    expect(byName['home']!.is_snapshot).toBe('false');
    expect(byName['home/nested']!.parent_id).toBe(byName['home']!.subvol_id);
    expect(byName['home']!.subvol_mount_path).toBe(subvolMnt);
    expect(byName['home-snap']!.subvol_mount_path).toBe('null');
    expect(fs.default_subvol_mountpath).toBe(btrfsMnt);
  });

  it('reports a file system without partition table as a single index-0 volume', async () => {
    // A whole-disk ext4 is how this VM's own root looks.
    const d = LoopDisk.create(48 * MiB, 'ferry-disc-d-');
    try {
      sh('mkfs.ext4', ['-q', d.device]);
      const mnt = d.mount(d.device);
      const r = await runFerry(['discover', '--include-loop']);
      expect(r.code, r.stderr).toBe(0);
      const whole = (JSON.parse(r.stdout) as SourceBody).disks!.find((x) => x.name === d.device)!;
      expect(whole.partition_style).toBe('MBR');
      expect(whole.physical_volumes).toHaveLength(1);
      expect(whole.physical_volumes[0]).toMatchObject({ name: d.device, index: 0, file_system: 'ext4', mount_point: mnt, uuid: blkid(d.device).UUID });
    } finally {
      d.destroy();
    }
  });

  it('reports an unmounted whole-disk Btrfs from its superblock, and says what it could not list', async () => {
    const d = LoopDisk.create(160 * MiB, 'ferry-disc-e-');
    try {
      sh('mkfs.btrfs', ['-q', '-f', '-L', 'cold', d.device]);
      const r = await runFerry(['discover', '--include-loop', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { body: SourceBody; warnings: string[] };
      const whole = out.body.disks!.find((x) => x.name === d.device)!;
      expect(whole.device_use).toBe('BTRFS');
      const uuid = blkid(d.device).UUID!;
      const fs = out.body.btrfs_list!.find((x) => x.uuid === uuid)!;
      expect(fs).toMatchObject({ label: 'cold', device: d.device, size: 160 * MiB, subvolumn: [], data_profile: '' });
      expect(fs.nodesize).toBeGreaterThan(0);
      expect(out.warnings.some((w) => w.includes(uuid) && /not mounted/.test(w))).toBe(true);
    } finally {
      d.destroy();
    }
  });
});
