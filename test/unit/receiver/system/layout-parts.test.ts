// The pure parts of laying out a system: the mkfs command lines (source UUID
// and label kept), the mount plan (Btrfs top levels, then mount order, then
// file systems without a mount point; vfat never), the waves the mounts
// are undone in, the volume target names, and --disk parsing.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ContentSchema, LayoutSchema } from '../../../../src/layout/model.js';
import { parseDisk } from '../../../../src/receiver/system/disks.js';
import { mkfsCommand, uuidGiven } from '../../../../src/receiver/system/format.js';
import { unmountWaves } from '../../../../src/receiver/system/mounts.js';
import { assertSafePaths, mountAfter, planMounts, runMountPlan, type PlannedMount } from '../../../../src/receiver/system/mount-plan.js';
import { SystemPaths } from '../../../../src/receiver/system/system-paths.js';

const made = (c: unknown) => ContentSchema.parse(c) as Parameters<typeof mkfsCommand>[0];

describe('mkfsCommand', () => {
  it('keeps the source UUID and label for every type', () => {
    const u = '3f0c7b52-6a1e-4c43-9d3e-2a8f1b7e0c11';
    expect(mkfsCommand(made({ kind: 'filesystem', fsType: 'ext4', uuid: u, label: 'boot' }), '/dev/x')).toEqual(['mkfs.ext4', ['-F', '-q', '-U', u, '-L', 'boot', '/dev/x']]);
    expect(mkfsCommand(made({ kind: 'filesystem', fsType: 'xfs', uuid: u, label: 'root' }), '/dev/x')).toEqual(['mkfs.xfs', ['-f', '-q', '-m', `uuid=${u}`, '-L', 'root', '/dev/x']]);
    expect(mkfsCommand(made({ kind: 'filesystem', fsType: 'btrfs', uuid: u }), '/dev/x')).toEqual(['mkfs.btrfs', ['-f', '-q', '-U', u, '/dev/x']]);
    expect(mkfsCommand(made({ kind: 'filesystem', fsType: 'vfat', uuid: 'ABCD-1234', label: 'ESP' }), '/dev/x')).toEqual(['mkfs.vfat', ['-i', 'ABCD1234', '-n', 'ESP', '/dev/x']]);
    expect(mkfsCommand(made({ kind: 'swap', uuid: u, label: 'swap' }), '/dev/x')).toEqual(['mkswap', ['-U', u, '-L', 'swap', '/dev/x']]);
  });
});

describe('uuidGiven (recorded without reading back)', () => {
  const u = '3F0C7B52-6A1E-4C43-9D3E-2A8F1B7E0C11';
  it('the UUID the command line gave, as blkid prints it, for ext2/3/4, xfs and btrfs', () => {
    for (const fsType of ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs']) expect(uuidGiven(made({ kind: 'filesystem', fsType, uuid: u }), false)).toBe(u.toLowerCase());
  });
  it('read back otherwise: vfat, swap, the nil UUID, no UUID, a btrfs made with a new one, anything not a UUID (mke2fs takes -U random)', () => {
    expect(uuidGiven(made({ kind: 'filesystem', fsType: 'vfat', uuid: 'ABCD-1234' }), false)).toBeUndefined();
    expect(uuidGiven(made({ kind: 'swap', uuid: u }), false)).toBeUndefined();
    expect(uuidGiven(made({ kind: 'filesystem', fsType: 'xfs', uuid: '00000000-0000-0000-0000-000000000000' }), false)).toBeUndefined();
    expect(uuidGiven(made({ kind: 'filesystem', fsType: 'ext4', uuid: '' }), false)).toBeUndefined();
    expect(uuidGiven(made({ kind: 'filesystem', fsType: 'btrfs', uuid: u }), true)).toBeUndefined();
    expect(uuidGiven(made({ kind: 'filesystem', fsType: 'ext4', uuid: 'random' }), false)).toBeUndefined();
    expect(uuidGiven(made({ kind: 'filesystem', fsType: 'ext4', uuid: `${u}0` }), false)).toBeUndefined();
  });
});

/** A partition holding a file system, for the mount plans below. */
const fs = (id: string, number: number, content: object) => ({ id, number, sizeBytes: 1, type: '83', content: { kind: 'filesystem', ...content } });
/** A one-disk layout of those partitions. */
const oneDisk = (table: string, partitions: object[]) => LayoutSchema.parse({ version: 1, disks: [{ name: 'd', sizeBytes: 0, table, partitions }] });

describe('planMounts', () => {
  it('mounts Btrfs top levels first, then the tree with fewer path components first, then file systems with no mount point; never vfat', () => {
    const layout = oneDisk('dos', [
      fs('efi', 1, { fsType: 'vfat', mountPoint: '/boot/efi' }),
      fs('boot', 2, { fsType: 'ext4', mountPoint: '/boot' }),
      fs('pool', 3, { fsType: 'btrfs', mountPoint: '/', defaultSubvolume: '@', subvolumes: [{ path: '@' }, { path: '@home', mountPoint: '/home' }] }),
      fs('spare', 4, { fsType: 'xfs' }),
    ]);
    const paths = new SystemPaths('/data', 'm');
    const devices = new Map([['efi', '/dev/d1'], ['boot', '/dev/d2'], ['pool', '/dev/d3'], ['spare', '/dev/d4']]);
    expect(planMounts(layout, devices, paths).map((m) => [m.device, m.dir, m.options.join(',')])).toEqual([
      ['/dev/d3', '/data/systems/m/btrfs/pool', 'subvolid=5'],
      ['/dev/d3', '/data/systems/m/root', 'subvol=@'],
      ['/dev/d2', '/data/systems/m/root/boot', ''],
      ['/dev/d3', '/data/systems/m/root/home', 'subvol=@home'],
      ['/dev/d4', '/data/systems/m/unmounted/spare', 'nouuid'],
    ]);
  });
});

describe('mountAfter', () => {
  it('waits for the mounts at or above a mount point and for the Btrfs top level of the same device, nothing else', () => {
    const layout = oneDisk('gpt', [
      fs('boot', 1, { fsType: 'ext4', mountPoint: '/boot' }),
      fs('esp', 2, { fsType: 'ext4', mountPoint: '/boot/efi' }),
      fs('root', 3, { fsType: 'xfs', mountPoint: '/' }),
      fs('pool', 4, { fsType: 'btrfs', mountPoint: '/srv', subvolumes: [{ path: '@home', mountPoint: '/home' }, { path: '@srv', mountPoint: '/srv' }] }),
      fs('data', 5, { fsType: 'xfs', mountPoint: '/data' }),
      fs('spare', 6, { fsType: 'ext4' }),
      fs('bootlike', 7, { fsType: 'ext4', mountPoint: '/bootlike' }),
    ]);
    const devices = new Map(['boot', 'esp', 'root', 'pool', 'data', 'spare', 'bootlike'].map((id, i) => [id, `/dev/d${i + 1}`]));
    const plan = planMounts(layout, devices, new SystemPaths('/x', 'm'));
    const at = (dir: string) => plan.findIndex((m) => m.dir === `/x/systems/m/${dir}`);
    expect(plan.map((m) => m.dir.replace('/x/systems/m/', ''))).toEqual(['btrfs/pool', 'root', 'root/boot', 'root/bootlike', 'root/data', 'root/home', 'root/srv', 'root/boot/efi', 'unmounted/spare']);
    const after = mountAfter(plan);
    const deps = (dir: string) => after[at(dir)]!.map((j) => plan[j]!.dir.replace('/x/systems/m/', '')).sort();
    expect(deps('btrfs/pool')).toEqual([]);
    expect(deps('root')).toEqual([]);
    // '/bootlike' shares a prefix with '/boot' but is not below it.
    expect(deps('root/bootlike')).toEqual(['root']);
    expect(deps('root/data')).toEqual(['root']);
    expect(deps('root/home')).toEqual(['btrfs/pool', 'root']);
    expect(deps('root/srv')).toEqual(['btrfs/pool', 'root']);
    expect(deps('root/boot/efi')).toEqual(['root', 'root/boot']);
    expect(deps('unmounted/spare')).toEqual([]);
    // A recognised layout creates no subvolumes: their mounts wait for the tree alone, not the top level.
    const again = mountAfter(plan, false);
    expect(again[at('root/home')]!.map((j) => plan[j]!.dir.replace('/x/systems/m/', ''))).toEqual(['root']);
    expect(again[at('root/srv')]!.map((j) => plan[j]!.dir.replace('/x/systems/m/', ''))).toEqual(['root']);
    expect(again[at('root/boot/efi')]!.map((j) => plan[j]!.dir.replace('/x/systems/m/', '')).sort()).toEqual(['root', 'root/boot']);
    // Two mounts on one directory keep their order.
    expect(mountAfter([{ device: '/dev/a', dir: '/t', options: [] }, { device: '/dev/b', dir: '/t', options: [] }])).toEqual([[], [0]]);
  });
});

describe('runMountPlan', () => {
  const plan: PlannedMount[] = ['/t/root', '/t/root/boot', '/t/root/data', '/t/root/opt', '/t/root/srv', '/t/root/boot/efi'].map((dir, i) => ({ device: `/dev/d${i}`, dir, options: [] }));
  const tick = () => new Promise<void>((r) => setTimeout(r, 1));

  it('mounts each after the mounts it sits in, the others side by side, never more than the limit at once', async () => {
    const order: string[] = [];
    let running = 0;
    let most = 0;
    await runMountPlan(plan, 2, async () => {}, async (m) => {
      most = Math.max(most, ++running);
      await tick();
      order.push(m.dir);
      running--;
    });
    expect([...order].sort()).toEqual(plan.map((m) => m.dir).sort());
    expect(order[0]).toBe('/t/root');
    expect(order.indexOf('/t/root/boot/efi')).toBeGreaterThan(order.indexOf('/t/root/boot'));
    expect(most).toBe(2);
  });

  it('after a failure starts no further mount, waits for those started, and throws the failure itself', async () => {
    const started: string[] = [];
    let inFlight = 0;
    const settledBefore: number[] = [];
    const run = runMountPlan(plan, 2, async () => {}, async (m) => {
      started.push(m.dir);
      inFlight++;
      await tick();
      if (m.dir === '/t/root/data') {
        inFlight--;
        throw new Error('mount: /t/root/data: wrong fs type');
      }
      await tick();
      await tick();
      inFlight--;
    });
    await expect(run.catch((e: Error) => (settledBefore.push(inFlight), Promise.reject(e)))).rejects.toThrow('wrong fs type');
    // Every mount started had ended when the error came out.
    expect(settledBefore).toEqual([0]);
    // '/boot' and '/data' ran together (limit 2); after '/data' failed nothing new started: not '/opt', '/srv', '/boot/efi'.
    expect(started).toEqual(['/t/root', '/t/root/boot', '/t/root/data']);
  });

  it('a subvolume waits for its Btrfs top level only when the subvolumes are being created', async () => {
    const pool: PlannedMount['btrfs'] = { kind: 'filesystem', fsType: 'btrfs', uuid: '', label: '', mountPoint: '', usedBytes: 0, subvolumes: [], defaultSubvolume: '' };
    const withTop: PlannedMount[] = [
      { device: '/dev/p', dir: '/t/btrfs/pool', options: ['subvolid=5'], btrfs: pool },
      { device: '/dev/r', dir: '/t/root', options: [] },
      { device: '/dev/p', dir: '/t/root/home', options: ['subvol=@home'] },
    ];
    const order = async (creating: boolean) => {
      const ended: string[] = [];
      await runMountPlan(withTop, 4, async () => {}, async (m) => {
        // The top level is the slowest mount.
        for (let i = 0; i < (m.btrfs ? 5 : 1); i++) await tick();
        ended.push(m.dir);
      }, creating);
      return ended;
    };
    expect(await order(true)).toEqual(['/t/root', '/t/btrfs/pool', '/t/root/home']);
    expect(await order(false)).toEqual(['/t/root', '/t/root/home', '/t/btrfs/pool']);
  });

  it('a file system that is not made fails its own mount and those that sit in it', async () => {
    const mounted: string[] = [];
    const run = runMountPlan(plan, 4, async (m) => {
      if (m.dir === '/t/root/boot') throw new Error('mkfs.ext4 failed');
    }, async (m) => {
      mounted.push(m.dir);
    });
    await expect(run).rejects.toThrow('mkfs.ext4 failed');
    expect(mounted).not.toContain('/t/root/boot');
    expect(mounted).not.toContain('/t/root/boot/efi');
  });
});

describe('unmountWaves', () => {
  it('unmounts what sits on a mount (or is stacked on its directory) before it, everything else side by side', () => {
    const mounted = ['/s/btrfs/pool', '/s/root', '/s/root/boot', '/s/root/home', '/s/root/var/log', '/s/unmounted/spare', '/s/root/boot/efi', '/s/fs/root', '/s/unmounted/spare'];
    expect(unmountWaves(mounted)).toEqual([
      ['/s/unmounted/spare', '/s/fs/root', '/s/root/boot/efi', '/s/root/var/log', '/s/root/home', '/s/btrfs/pool'],
      ['/s/unmounted/spare', '/s/root/boot'],
      ['/s/root'],
    ]);
  });
});

describe('assertSafePaths', () => {
  const withFs = (content: object) =>
    LayoutSchema.parse({ version: 1, disks: [{ name: 'd', sizeBytes: 0, table: 'gpt', partitions: [{ id: 'p1', number: 1, sizeBytes: 1, type: '83', content: { kind: 'filesystem', fsType: 'btrfs', ...content } }] }] });

  it('refuses mount points and subvolume paths that could reach outside the receiver\'s directories', () => {
    expect(() => assertSafePaths(withFs({ mountPoint: '/srv/../../etc' }))).toThrow(/mount point '\/srv\/..\/..\/etc' must be an absolute path/);
    expect(() => assertSafePaths(withFs({ mountPoint: 'srv' }))).toThrow(/must be an absolute path/);
    expect(() => assertSafePaths(withFs({ subvolumes: [{ path: '../x' }] }))).toThrow(/subvolume path '..\/x' must be relative/);
    expect(() => assertSafePaths(withFs({ defaultSubvolume: '/@' }))).toThrow(/subvolume path '\/@'/);
    expect(() => assertSafePaths(withFs({ mountPoint: '/', subvolumes: [{ path: '@/var/lib', mountPoint: '/var/lib' }] }))).not.toThrow();
  });
});

describe('names', () => {
  it('names a volume target ID.VOLID with only the characters targets allow', () => {
    const p = new SystemPaths('/data', 'm-web1');
    expect(p.targetName('disk0p5:@home/.snap shots')).toBe('m-web1.disk0p5.at-home-.snap_shots');
    expect(() => new SystemPaths('/data', '../etc')).toThrow(/system session id/);
  });

  it('parses --disk NAME=DEVICE', () => {
    expect(parseDisk('disk0=/dev/vdb')).toEqual({ name: 'disk0', path: '/dev/vdb' });
    expect(() => parseDisk('disk0')).toThrow(/NAME=DEVICE/);
    expect(() => parseDisk('a b=/dev/vdb')).toThrow(/may hold letters/);
  });

  it('names a --disk by its own node, not a link to it (sysfs knows the kernel name: /dev/disk/by-id/… → /dev/sdb)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-disk-link-'));
    try {
      writeFileSync(join(dir, 'disk.img'), '');
      symlinkSync(join(dir, 'disk.img'), join(dir, 'by-id-link'));
      expect(parseDisk(`disk0=${join(dir, 'by-id-link')}`)).toEqual({ name: 'disk0', path: join(dir, 'disk.img') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
