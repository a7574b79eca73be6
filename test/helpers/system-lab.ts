// The whole-server test source of issue 15 (ISSUE15-DESIGN.md, "The test
// server"), built on two loop devices from sparse image files and mounted at
// a source root in mount order, filled with small real content. Shared by
// the integration tests and the bench; `teardown()` unmounts, removes the
// LVM metadata and detaches everything, also after a build that failed half
// way. Run under the shared lock (/tmp/ferry-heavy.lock): loop devices race.
//
// disk0 (GPT, 920 MiB): p1 BIOS boot 1 MiB · p2 ESP vfat 64 MiB (not mounted:
//   this kernel has no vfat; files put in with mtools) · p3 /boot ext4 200 MiB
//   · p4 / xfs 320 MiB · p5 btrfs 300 MiB (@ at /srv, @home at /home,
//   read-only snapshot @snap-1 of @home, default subvolume @) · p6 swap 32 MiB.
// disk1 (MBR, 568 MiB), in disk order: p1 /data xfs 320 MiB · p3 type 8e,
//   an LVM PV (40 MiB) of a VG with two LVs (data 8 MiB, logs-1 8 MiB;
//   metadata only, no device-mapper here) · p2 extended (202 MiB, last on the
//   disk, so a block copy onto a larger disk grows it with /opt): p5 /var/log
//   ext4 100 MiB, p6 /opt ext4 100 MiB. Numbers out of disk order, as on
//   real disks partitioned twice.
// UUIDs are fresh per build (two btrfs file systems with one fsid cannot be
// mounted side by side): read them from `parts`.

import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './loop.js';

const MIB = 1 << 20;
const NOACT = ['--config', 'global { activation = 0 }'];

export const GPT_TYPES = {
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  linuxFs: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  rootX86_64: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
} as const;

/** Tools buildSourceServer runs (for `needs({ tools })`). */
export const SYSTEM_LAB_TOOLS = [
  'sfdisk', 'losetup', 'mkfs.vfat', 'mkfs.ext4', 'mkfs.xfs', 'mkfs.btrfs', 'mkswap', 'btrfs',
  'pvcreate', 'vgcreate', 'lvcreate', 'vgremove', 'mcopy', 'mmd', 'setfattr', 'setfacl', 'blkid',
];

export interface LabPartition {
  /** 'disk0' or 'disk1'. */
  disk: string;
  number: number;
  /** /dev/loopNpM */
  device: string;
  sizeBytes: number;
  /** GPT type GUID or MBR type byte ('83', '5', '8e'). */
  type: string;
  /** GPT partition name. */
  name: string;
  attrs: string[];
  logical: boolean;
  /** MBR active flag. */
  bootable?: boolean;
  /** '' for none (BIOS boot, extended, LVM PV). */
  fsType: '' | 'vfat' | 'ext4' | 'xfs' | 'btrfs' | 'swap' | 'LVM2_member';
  uuid: string;
  label: string;
  /** Mount point relative to the root ('' when not mounted; btrfs: its top level's, the subvolumes' are in `btrfs`). */
  mountPoint: string;
}

export interface SourceServer {
  /** The source root: / of the test server (pass as --source-root). */
  root: string;
  disks: { name: string; image: string; device: string; sizeBytes: number; table: 'gpt' | 'dos' }[];
  parts: LabPartition[];
  /** btrfs (disk0p5): subvolumes and their mount points relative to the root. */
  btrfs: { device: string; subvolumes: { path: string; readOnly: boolean; mountPoint: string }[]; defaultSubvolume: string };
  /** The LVM VG on disk1p3 (name unique per build) and its LVs. */
  vg: { name: string; pv: string; lvs: { name: string; sizeBytes: number }[] };
  /** Mount points relative to the root, in mount order, with their absolute paths. */
  mounts: { mountPoint: string; path: string; device: string; fsType: string; options: string }[];
  /** Unmounts, removes the VG and PV, detaches both loop devices; never throws. Idempotent. */
  teardown(): void;
}

/** A blank (sparse) image file to hand a receiver as `--disk NAME=FILE`. */
export function blankImage(dir: string, name: string, sizeBytes: number): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.img`);
  rmSync(path, { force: true });
  sh('truncate', ['-s', String(sizeBytes), path]);
  return path;
}

function waitFor(path: string): void {
  for (let i = 0; i < 100 && !existsSync(path); i++) execFileSync('sleep', ['0.05']);
  if (!existsSync(path)) throw new Error(`${path} did not appear`);
}

const hexId = () => randomBytes(4).toString('hex').toUpperCase();

/** Copies up to `count` small /usr/share/doc directories into `dest` (real content for rsync comparisons). */
function copyDocs(dest: string, skip: number, count: number): void {
  mkdirSync(dest, { recursive: true });
  const dirs = readdirSync('/usr/share/doc').sort().slice(skip, skip + count);
  for (const d of dirs) sh('cp', ['-a', join('/usr/share/doc', d), dest]);
}

/** Hard links, symlinks, an xattr and an ACL under `dir`. */
function addSpecialFiles(dir: string, tag: string): void {
  mkdirSync(dir, { recursive: true });
  const f = join(dir, `${tag}.txt`);
  writeFileSync(f, `ferry system lab: ${tag}\n`.repeat(100));
  linkSync(f, join(dir, `${tag}.hardlink`));
  symlinkSync(`${tag}.txt`, join(dir, `${tag}.symlink`));
  symlinkSync('/nonexistent/dangling', join(dir, `${tag}.dangling`));
  sh('setfattr', ['-n', 'user.ferry', '-v', tag, f]);
  sh('setfacl', ['-m', 'u:1234:rw', f]);
  writeFileSync(join(dir, `${tag}.empty`), '');
}

/**
 * `usr`: the benchmark's variant (test/bench/system.mjs): larger file systems
 * filled with real trees copied from this machine's /usr (/ gets
 * /usr/share/doc and /usr/share/man, @home /usr/include, /data
 * /usr/lib/python3 and /usr/share/locale) instead of a few doc directories.
 */
export interface SourceServerOptions {
  usr?: boolean;
}

export async function buildSourceServer(dir: string, options: SourceServerOptions = {}): Promise<SourceServer> {
  const undo: (() => void)[] = [];
  let tornDown = false;
  const teardown = () => {
    if (tornDown) return;
    tornDown = true;
    for (const step of undo.reverse()) {
      try {
        step();
      } catch {
        /* keep going: the rest must still be undone */
      }
    }
  };
  try {
    return build(dir, undo, teardown, options.usr === true);
  } catch (err) {
    teardown();
    throw err;
  }
}

function build(dir: string, undo: (() => void)[], teardown: () => void, usr: boolean): SourceServer {
  // Sizes in MiB: the tests' small server, or the benchmark's, sized for its /usr trees with room to spare.
  const mb = usr ? { root: 700, btrfs: 600, data: 700, disk0: 1620, disk1: 948 } : { root: 320, btrfs: 300, data: 320, disk0: 920, disk1: 568 };
  mkdirSync(dir, { recursive: true });
  const root = join(dir, 'root');
  mkdirSync(root, { recursive: true });
  // Script lines name their partition (`IMAGE5 : …`): sfdisk numbers unnamed lines in order, which cannot put a primary after the extended partition.
  const attach = (name: string, sizeBytes: number, lines: [number, string][], table: 'gpt' | 'dos') => {
    const image = blankImage(dir, name, sizeBytes);
    const script = [`label: ${table}`, ...lines.map(([n, l]) => `${image}${n} : ${l}`), ''].join('\n');
    sh('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', image], script);
    const device = sh('losetup', ['--find', '--show', '--partscan', image]).trim();
    undo.push(() => sh('losetup', ['-d', device]));
    // On this kernel --partscan attaches without creating the partition nodes, and `partx -u` misses the
    // last logical partition of an MBR disk: add each missing one by number (devtmpfs, no udev).
    sh('partx', ['-u', device]);
    for (const [n] of lines) {
      if (!existsSync(`${device}p${n}`)) sh('partx', ['-a', '-n', `${n}:${n}`, device]);
      waitFor(`${device}p${n}`);
    }
    return { name, image, device, sizeBytes, table };
  };

  const d0 = attach(
    'disk0',
    mb.disk0 * MIB,
    [
      [1, `size=1MiB, type=${GPT_TYPES.biosBoot}, name="BIOS boot"`],
      [2, `size=64MiB, type=${GPT_TYPES.esp}, name="EFI System", attrs="RequiredPartition"`],
      [3, `size=200MiB, type=${GPT_TYPES.linuxFs}, name="boot", attrs="LegacyBIOSBootable"`],
      [4, `size=${mb.root}MiB, type=${GPT_TYPES.rootX86_64}, name="root"`],
      [5, `size=${mb.btrfs}MiB, type=${GPT_TYPES.linuxFs}, name="data", attrs="GUID:60"`],
      [6, `size=32MiB, type=${GPT_TYPES.swap}, name="swap"`],
    ],
    'gpt',
  );
  const d1 = attach(
    'disk1',
    mb.disk1 * MIB,
    [
      [1, `size=${mb.data}MiB, type=83, bootable`],
      [3, 'size=40MiB, type=8e'],
      [2, 'size=202MiB, type=5'],
      [5, 'size=100MiB, type=83'],
      [6, 'size=100MiB, type=83'],
    ],
    'dos',
  );
  const p0 = (n: number) => `${d0.device}p${n}`;
  const p1 = (n: number) => `${d1.device}p${n}`;

  const espId = hexId();
  const ids = {
    esp: `${espId.slice(0, 4)}-${espId.slice(4)}`,
    boot: randomUUID(),
    root: randomUUID(),
    btrfs: randomUUID(),
    swap: randomUUID(),
    data: randomUUID(),
    varlog: randomUUID(),
    opt: randomUUID(),
  };
  sh('mkfs.vfat', ['-F', '32', '-i', espId, '-n', 'EFI', p0(2)]);
  sh('mkfs.ext4', ['-q', '-F', '-U', ids.boot, '-L', 'boot', p0(3)]);
  sh('mkfs.xfs', ['-q', '-f', '-m', `uuid=${ids.root}`, '-L', 'root', p0(4)]);
  sh('mkfs.btrfs', ['-q', '-f', '-U', ids.btrfs, '-L', 'pool', p0(5)]);
  sh('mkswap', ['-U', ids.swap, '-L', 'swap', p0(6)]);
  sh('mkfs.xfs', ['-q', '-f', '-m', `uuid=${ids.data}`, '-L', 'data', p1(1)]);
  sh('mkfs.ext4', ['-q', '-F', '-U', ids.varlog, '-L', 'varlog', p1(5)]);
  sh('mkfs.ext4', ['-q', '-F', '-U', ids.opt, '-L', 'opt', p1(6)]);

  // LVM: metadata only (no device-mapper on this kernel), a VG name of its own per build.
  const vgName = `ferrylab${randomBytes(3).toString('hex')}`;
  sh('pvcreate', ['-q', '-ff', '-y', ...NOACT, p1(3)]);
  undo.push(() => sh('pvremove', ['-q', '-ff', '-y', ...NOACT, p1(3)]));
  sh('vgcreate', ['-q', ...NOACT, vgName, p1(3)]);
  undo.push(() => sh('vgremove', ['-q', '-f', ...NOACT, vgName]));
  const lvs = [
    { name: 'data', sizeBytes: 8 * MIB },
    { name: 'logs-1', sizeBytes: 8 * MIB },
  ];
  for (const lv of lvs) sh('lvcreate', ['-q', ...NOACT, '-an', '-Zn', '-L', `${lv.sizeBytes / MIB}M`, '-n', lv.name, vgName]);

  // ESP content through mtools (no vfat mount here).
  const mtools = (cmd: string, args: string[]) =>
    execFileSync(cmd, ['-i', p0(2), ...args], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  mtools('mmd', ['::/EFI', '::/EFI/BOOT', '::/EFI/debian']);
  const espFile = join(dir, 'grubx64.efi');
  writeFileSync(espFile, randomBytes(64 * 1024));
  mtools('mcopy', [espFile, '::/EFI/BOOT/BOOTX64.EFI']);
  mtools('mcopy', ['/etc/hostname', '::/EFI/debian/grub.cfg']);
  rmSync(espFile);

  // Btrfs subvolumes on the top level, then the snapshot and the default.
  const top = join(dir, 'btrfs-top');
  mkdirSync(top, { recursive: true });
  sh('mount', [p0(5), top]);
  try {
    sh('btrfs', ['subvolume', 'create', join(top, '@')]);
    sh('btrfs', ['subvolume', 'create', join(top, '@home')]);
    copyDocs(join(top, '@', 'www'), 30, 4);
    addSpecialFiles(join(top, '@', 'special'), 'srv');
    copyDocs(join(top, '@home', 'user', 'docs'), 40, 4);
    addSpecialFiles(join(top, '@home', 'user'), 'home');
    writeFileSync(join(top, 'top-level-file'), 'on the top level, in no subvolume\n');
    sh('btrfs', ['subvolume', 'snapshot', '-r', join(top, '@home'), join(top, '@snap-1')]);
    sh('btrfs', ['subvolume', 'set-default', join(top, '@')]);
  } finally {
    sh('umount', [top]);
  }

  // Mount the tree in mount order; each mount is undone by teardown, innermost first.
  const mounts: SourceServer['mounts'] = [];
  const mount = (mountPoint: string, device: string, fsType: string, options = '') => {
    const path = mountPoint === '/' ? root : join(root, mountPoint);
    mkdirSync(path, { recursive: true });
    sh('mount', ['-t', fsType, ...(options ? ['-o', options] : []), device, path]);
    undo.push(() => {
      try {
        sh('umount', [path]);
      } catch {
        sh('umount', ['-l', path]); // still busy (a test's open file): detach it now, the kernel finishes later
      }
    });
    mounts.push({ mountPoint, path, device, fsType, options });
    return path;
  };
  const r = mount('/', p0(4), 'xfs');
  const boot = mount('/boot', p0(3), 'ext4');
  mkdirSync(join(boot, 'efi'), { recursive: true }); // the ESP's mount point: empty here (no vfat)
  const srv = mount('/srv', p0(5), 'btrfs', 'subvol=@');
  const home = mount('/home', p0(5), 'btrfs', 'subvol=@home');
  const data = mount('/data', p1(1), 'xfs');
  const varlog = mount('/var/log', p1(5), 'ext4');
  const opt = mount('/opt', p1(6), 'ext4');
  void srv;
  void home;
  copyDocs(join(r, 'usr', 'share', 'doc'), 0, 10);
  addSpecialFiles(join(r, 'etc'), 'root');
  mkdirSync(join(r, 'mnt', 'empty'), { recursive: true });
  copyDocs(join(boot, 'grub'), 10, 3);
  addSpecialFiles(boot, 'boot');
  copyDocs(join(data, 'share'), 15, 5);
  addSpecialFiles(join(data, 'links'), 'data');
  copyDocs(varlog, 20, 3);
  addSpecialFiles(join(varlog, 'apt'), 'log');
  copyDocs(opt, 25, 3);
  addSpecialFiles(join(opt, 'app'), 'opt');
  if (usr) {
    const copy = (from: string, to: string) => {
      mkdirSync(to, { recursive: true });
      sh('cp', ['-a', from, to]);
    };
    copy('/usr/share/doc', join(r, 'usr', 'share', 'all-doc'));
    copy('/usr/share/man', join(r, 'usr', 'share'));
    copy('/usr/include', join(home, 'user'));
    copy('/usr/lib/python3', join(data, 'lib'));
    copy('/usr/share/locale', join(data, 'share'));
  }
  sh('sync', []);

  const part = (disk: typeof d0, number: number, rest: Omit<LabPartition, 'disk' | 'number' | 'device'>): LabPartition => ({
    disk: disk.name,
    number,
    device: `${disk.device}p${number}`,
    ...rest,
  });
  const none = { fsType: '' as const, uuid: '', label: '', mountPoint: '' };
  const parts: LabPartition[] = [
    part(d0, 1, { sizeBytes: 1 * MIB, type: GPT_TYPES.biosBoot, name: 'BIOS boot', attrs: [], logical: false, ...none }),
    part(d0, 2, { sizeBytes: 64 * MIB, type: GPT_TYPES.esp, name: 'EFI System', attrs: ['RequiredPartition'], logical: false, fsType: 'vfat', uuid: ids.esp, label: 'EFI', mountPoint: '' }),
    part(d0, 3, { sizeBytes: 200 * MIB, type: GPT_TYPES.linuxFs, name: 'boot', attrs: ['LegacyBIOSBootable'], logical: false, fsType: 'ext4', uuid: ids.boot, label: 'boot', mountPoint: '/boot' }),
    part(d0, 4, { sizeBytes: mb.root * MIB, type: GPT_TYPES.rootX86_64, name: 'root', attrs: [], logical: false, fsType: 'xfs', uuid: ids.root, label: 'root', mountPoint: '/' }),
    part(d0, 5, { sizeBytes: mb.btrfs * MIB, type: GPT_TYPES.linuxFs, name: 'data', attrs: ['GUID:60'], logical: false, fsType: 'btrfs', uuid: ids.btrfs, label: 'pool', mountPoint: '' }),
    part(d0, 6, { sizeBytes: 32 * MIB, type: GPT_TYPES.swap, name: 'swap', attrs: [], logical: false, fsType: 'swap', uuid: ids.swap, label: 'swap', mountPoint: '' }),
    part(d1, 1, { sizeBytes: mb.data * MIB, type: '83', name: '', attrs: [], logical: false, bootable: true, fsType: 'xfs', uuid: ids.data, label: 'data', mountPoint: '/data' }),
    part(d1, 2, { sizeBytes: 202 * MIB, type: '5', name: '', attrs: [], logical: false, ...none }),
    part(d1, 3, { sizeBytes: 40 * MIB, type: '8e', name: '', attrs: [], logical: false, ...none, fsType: 'LVM2_member' }),
    part(d1, 5, { sizeBytes: 100 * MIB, type: '83', name: '', attrs: [], logical: true, fsType: 'ext4', uuid: ids.varlog, label: 'varlog', mountPoint: '/var/log' }),
    part(d1, 6, { sizeBytes: 100 * MIB, type: '83', name: '', attrs: [], logical: true, fsType: 'ext4', uuid: ids.opt, label: 'opt', mountPoint: '/opt' }),
  ];
  return {
    root,
    disks: [d0, d1],
    parts,
    btrfs: {
      device: p0(5),
      subvolumes: [
        { path: '@', readOnly: false, mountPoint: '/srv' },
        { path: '@home', readOnly: false, mountPoint: '/home' },
        { path: '@snap-1', readOnly: true, mountPoint: '' },
      ],
      defaultSubvolume: '@',
    },
    vg: { name: vgName, pv: p1(3), lvs },
    mounts,
    teardown,
  };
}
