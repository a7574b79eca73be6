// The system session's 'configure' request on a real receiver (`ferry
// receive --disk`), over TLS: at file level on the mounted target tree, at
// block level on a whole disk copied by a block pass (the receiver mounts
// the tree for configure and unmounts it after). The target is a small
// Debian stand-in (test/helpers/fake-debian.ts) whose boot tools record
// their calls: grub-install is given the receiver's device of the boot disk,
// grub.cfg ends up naming the root by UUID, the reply lists the changes and
// the target's /var/log/ferry-configure.log holds them; configuring again
// rewrites no file. A system configure does not know is refused
// (FERRY_CONFIGURE_UNSUPPORTED) and the receiver leaves nothing mounted.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayoutSchema, type Layout } from '../../src/layout/model.js';
import type { SystemReply } from '../../src/layout/system-session.js';
import { migrateArgs, startReceiver, type RunningReceiver } from '../helpers/block.js';
import { runFerry } from '../helpers/cli.js';
import { plantFakeDebian } from '../helpers/fake-debian.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';
import { SystemClient } from '../helpers/system-client.js';
import { mountsUnder } from '../helpers/mounts.js';

const MiB = 1024 * 1024;
const env = needs({ root: true, tools: ['busybox', 'chroot', 'sfdisk', 'partx', 'losetup', 'blkid', 'mkfs.ext4', 'debugfs'] });
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const BIOS = '21686148-6449-6E6F-744E-656564454649';
const ROOT_UUID = '5d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a';

const loopOf = (image: string) => sh('losetup', ['-j', image, '-O', 'NAME', '-n']).trim();

function layoutOn(disk: string, starts?: number[]): Layout {
  return LayoutSchema.parse({
    version: 1,
    disks: [{
      name: disk,
      sizeBytes: 48 * MiB,
      table: 'gpt',
      partitions: [
        { id: `${disk}p1`, number: 1, sizeBytes: 1 * MiB, type: BIOS, sourceDevice: '/dev/sda1', content: { kind: 'none' }, ...(starts ? { startBytes: starts[0] } : {}) },
        { id: `${disk}p2`, number: 2, sizeBytes: 46 * MiB, type: LINUX, sourceDevice: '/dev/sda2', content: { kind: 'filesystem', fsType: 'ext4', uuid: ROOT_UUID, mountPoint: '/' }, ...(starts ? { startBytes: starts[1] } : {}) },
      ],
    }],
  });
}

function configured(r: SystemReply | Error): Extract<SystemReply, { op: 'configure' }> {
  if (r instanceof Error) throw r;
  if (r.op !== 'configure') throw new Error(`not a configure reply: ${r.op}`);
  return r;
}

describe.runIf(env.ok)("the system session's configure request", () => {
  let dir: string;
  let data: string;
  let recv: RunningReceiver;
  const image = (n: string) => join(dir, `${n}.img`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-configure-rx-'));
    data = join(dir, 'recv');
    sh('truncate', ['-s', '64M', image('f')]);
    sh('truncate', ['-s', '64M', image('b')]);
    recv = await startReceiver(data, [], ['--disk', `f=${image('f')}`, '--disk', `b=${image('b')}`]);
  }, 60_000);

  afterAll(async () => {
    await recv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('file level: configures the mounted tree (GRUB on the boot disk, root by UUID, drivers), logs it, and a second time rewrites nothing', async () => {
    const c = await SystemClient.open(recv.info, 'cf');
    const laid = await c.request({ op: 'layout', mode: 'file', layout: layoutOn('f') });
    if (laid instanceof Error || laid.op !== 'layout') throw laid;
    const root = laid.stagingRoot;
    const loop = loopOf(image('f'));
    // What a file pass of the source brings (the test writes it straight into the tree).
    plantFakeDebian(root, { mkconfigRoot: `${loop}p2` });

    const r = configured(await c.request({ op: 'configure' }));
    expect(r.distro).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(r.log).toBe('/var/log/ferry-configure.log');
    expect(r.changes).toContain(`/etc/fstab:2: /dev/sda1 → UUID=${ROOT_UUID} (/: fp2)`);
    expect(readFileSync(join(root, 'var/tmp/calls'), 'utf8')).toBe(`update-initramfs -u -k all\ngrub-install --target=i386-pc ${loop}\ngrub-mkconfig -o /boot/grub/grub.cfg OS_PROBER=true\n`);
    expect(readFileSync(join(root, 'boot/grub/grub.cfg'), 'utf8')).toContain(`root=UUID=${ROOT_UUID} ro`);
    expect(readFileSync(join(root, 'etc/default/grub'), 'utf8')).toContain(`GRUB_CMDLINE_LINUX="console=ttyS0 root=UUID=${ROOT_UUID} net.ifnames=0"`);
    const logged = readFileSync(join(root, 'var/log/ferry-configure.log'), 'utf8');
    for (const line of r.changes) expect(logged).toContain(line);
    // Only the receiver's own tree is mounted: the chroot's /dev, /proc, /sys, /run are gone.
    expect(mountsUnder(join(data, 'systems', 'cf'))).toEqual([root]);

    const again = configured(await c.request({ op: 'configure', keepStaticNetwork: false }));
    expect(again.changes.filter((l) => l.startsWith('/etc/'))).toEqual([]);
    await c.end();
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
  });

  it('a system it does not know is refused by name, and the session ends with nothing mounted', async () => {
    const c = await SystemClient.open(recv.info, 'cu');
    const laid = await c.request({ op: 'layout', mode: 'file', layout: layoutOn('f'), relayout: true });
    if (laid instanceof Error || laid.op !== 'layout') throw laid;
    plantFakeDebian(laid.stagingRoot, { mkconfigRoot: '/dev/sda2' });
    writeFileSync(join(laid.stagingRoot, 'etc/os-release'), 'PRETTY_NAME="Alpine Linux v3.19"\nID=alpine\nVERSION_ID=3.19.1\n');
    const refused = await c.request({ op: 'configure' });
    expect(refused instanceof Error && [(refused as { code?: string }).code, refused.message]).toEqual([
      'FERRY_CONFIGURE_UNSUPPORTED',
      'receiver: the migrated system is Alpine Linux v3.19 (ID=alpine VERSION_ID=3.19.1): configure knows the Debian family (initramfs-tools, GRUB 2) and the RHEL family 7 to 9 (dracut, grub2); nothing was changed',
    ]);
    c.close();
    for (let i = 0; i < 100 && mountsUnder(join(data, 'systems')).length > 0; i++) await new Promise((res) => setTimeout(res, 50));
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
  });

  it('block level: the tree a whole-disk copy brought is mounted for configure, configured, and unmounted', async () => {
    // The source disk: GPT, BIOS boot, an ext4 root holding the stand-in system.
    const source = LoopDisk.create(48 * MiB, 'ferry-configure-src-');
    try {
      sh('sfdisk', ['--quiet', source.device], `label: gpt\n,1M,${BIOS}\n,46M,${LINUX}\n`);
      source.rescan();
      sh('mkfs.ext4', ['-q', '-F', '-U', ROOT_UUID, source.part(2)]);
      const mnt = source.mount(source.part(2));
      plantFakeDebian(mnt, { mkconfigRoot: '/dev/loop99p2' });
      sh('umount', [mnt]);
      const t = (JSON.parse(sh('sfdisk', ['--json', source.device])) as { partitiontable: { partitions: Array<{ start: number }> } }).partitiontable.partitions;

      const c = await SystemClient.open(recv.info, 'cb');
      const laid = await c.request({ op: 'layout', mode: 'block', layout: layoutOn('b', t.map((p) => p.start * 512)) });
      if (laid instanceof Error || laid.op !== 'layout') throw laid;
      expect(laid.volumes.map((v) => [v.id, v.wholeDisk])).toEqual([['b', true]]);
      const copy = await runFerry(migrateArgs(recv.info, [`${source.image}=cb.b`]));
      expect(copy.code, copy.stderr).toBe(0);
      const done = await c.request({ op: 'volume-done', id: 'b' });
      if (done instanceof Error) throw done;

      const r = configured(await c.request({ op: 'configure' }));
      expect(r.changes).toContain(`/etc/fstab:2: /dev/sda1 → UUID=${ROOT_UUID} (/: bp2)`);
      expect(r.changes).toContain('/boot/grub/grub.cfg: 1 root=/resume= device path of the receiver rewritten to UUID= (no udev in the chroot)');
      // Block level keeps nothing mounted between requests.
      expect(mountsUnder(join(data, 'systems'))).toEqual([]);
      await c.end();
      const dev = sh('losetup', ['-f', '--show', '-P', image('b')]).trim();
      try {
        sh('partx', ['-u', dev]);
        expect(sh('debugfs', ['-R', 'cat /etc/fstab', `${dev}p2`])).toContain(`UUID=${ROOT_UUID} / ext4 errors=remount-ro 0 1`);
        expect(sh('debugfs', ['-R', 'cat /var/tmp/calls', `${dev}p2`])).toContain('grub-install --target=i386-pc /dev/loop');
      } finally {
        sh('losetup', ['-d', dev]);
      }
    } finally {
      source.destroy();
    }
  });
});
