// configure's chroot discipline and its whole run, on a small stand-in for a
// migrated Debian system on a real loop disk (test/helpers/fake-debian.ts:
// busybox as /bin/sh, the boot tools as scripts that record their calls;
// grub-mkconfig writes what the real one writes without udev: root=/dev/loopNpM). The step commands
// are real processes inside a real chroot with /dev, /proc, /sys and /run
// mounted. Shown: the tools run inside the target (never on the receiver),
// the files are rewritten, grub.cfg names the root by UUID, the log lists
// every change, a second run changes no file; a step failing half way leaves
// nothing mounted and the file system clean (e2fsck); an unknown system is
// refused with nothing changed. (The real Debian 12 image and its boot in
// qemu are the boot-lab tests'.)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LayoutSchema } from '../../src/layout/model.js';
import { withChroot } from '../../src/receiver/configure/chroot.js';
import { CONFIGURE_LOG, configureSystem, type ConfigureInput } from '../../src/receiver/configure/configure-system.js';
import { mountsUnder } from '../../src/receiver/system/mounts.js';
import { plantFakeDebian } from '../helpers/fake-debian.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';

const MiB = 1024 * 1024;
const env = needs({ root: true, tools: ['busybox', 'chroot', 'sfdisk', 'mkfs.ext4', 'e2fsck', 'blkid'] });
const log = pino({ level: 'silent' });

describe.runIf(env.ok)('configure in the target chroot', () => {
  let disk: LoopDisk;
  let root: string;
  let uuid: string;
  let input: ConfigureInput;
  const at = (p: string) => join(root, p);
  const read = (p: string) => readFileSync(at(p), 'utf8');
  /** Mounts below the target root other than the root file system itself. */
  const leftMounted = async () => (await mountsUnder(root)).filter((m) => m !== root);

  const plantSystem = (mkconfigFails = false) => plantFakeDebian(root, { mkconfigRoot: disk.part(1), mkconfigFails });

  beforeAll(() => {
    disk = LoopDisk.create(64 * MiB, 'ferry-configure-');
    sh('sfdisk', ['--quiet', disk.device], 'label: dos\n,,83\n');
    disk.rescan();
    sh('mkfs.ext4', ['-q', '-F', disk.part(1)]);
    uuid = sh('blkid', ['-s', 'UUID', '-o', 'value', disk.part(1)]).trim();
    root = disk.mount(disk.part(1));
    const layout = LayoutSchema.parse({
      version: 1,
      disks: [{ name: 'disk0', sizeBytes: 64 * MiB, table: 'dos', partitions: [{ id: 'disk0p1', number: 1, sizeBytes: 63 * MiB, type: '83', sourceDevice: '/dev/sda1', content: { kind: 'filesystem', fsType: 'ext4', uuid, mountPoint: '/' } }] }],
    });
    input = { root, requested: layout, made: layout, devices: new Map([['disk0p1', disk.part(1)]]), diskDevices: new Map([['disk0', disk.device]]), keepStaticNetwork: false, log };
  });
  afterAll(() => disk?.destroy());
  beforeEach(() => sh('rm', ['-rf', '--one-file-system', ...['bin', 'etc', 'usr', 'lib', 'var', 'boot', 'tmp'].map(at)]));

  it('runs its steps as real processes inside the target, then unmounts /dev, /proc, /sys and /run', async () => {
    plantSystem();
    const seen = await withChroot(root, {}, log, async (c) => {
      const r = await c.run('/bin/sh', ['-c', 'test -c /dev/null && test -d /sys/class && test -r /proc/self/status && echo "$PATH"']);
      return { path: r.stdout.trim(), mounted: await leftMounted() };
    });
    expect(seen.path).toBe('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(seen.mounted.sort()).toEqual(['/dev', '/proc', '/run', '/sys'].map(at).sort());
    expect(await leftMounted()).toEqual([]);
  });

  it('a step that fails half way: the error names it, and nothing is left mounted', async () => {
    plantSystem();
    const run = withChroot(root, {}, log, async (c) => {
      await c.run('/bin/sh', ['-c', 'echo first > /var/tmp/half']);
      await c.run('/bin/sh', ['-c', 'echo "grub-install: error: cannot find a device for /boot/grub" >&2; exit 3']);
      await c.run('/bin/sh', ['-c', 'echo never > /var/tmp/half']);
    });
    await expect(run).rejects.toMatchObject({ code: 'FERRY_CONFIGURE_FAILED', message: expect.stringContaining('cannot find a device for /boot/grub') });
    expect(read('var/tmp/half')).toBe('first\n');
    expect(await leftMounted()).toEqual([]);
  });

  it('configures a Debian system: fstab and GRUB_CMDLINE_LINUX by UUID, drivers listed, initramfs and GRUB in the chroot, grub.cfg without the loop device, every change logged; again: no file changes', async () => {
    plantSystem();
    const r = await configureSystem(input);
    expect(r.distro).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(r.log).toBe(CONFIGURE_LOG);
    expect(read('etc/fstab')).toBe(`# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=${uuid} / ext4 errors=remount-ro 0 1\nproc /proc proc defaults 0 0\n`);
    expect(read('etc/default/grub')).toContain(`GRUB_CMDLINE_LINUX="console=ttyS0 root=UUID=${uuid} net.ifnames=0"`);
    // virtio_pci is built into this kernel: nothing to list for it.
    expect(read('etc/initramfs-tools/modules')).toMatch(/\nvirtio_blk\nvirtio_scsi\nvirtio_net\nnvme\n$/);
    expect(read('var/tmp/calls').split('\n')).toEqual(['update-initramfs -u -k all', `grub-install --target=i386-pc ${disk.device}`, 'grub-mkconfig -o /boot/grub/grub.cfg OS_PROBER=true', '']);
    expect(read('boot/grub/grub.cfg')).toContain(`linux /vmlinuz root=UUID=${uuid} ro console=ttyS0`);
    const logged = read('var/log/ferry-configure.log');
    for (const c of r.changes) expect(logged).toContain(c);
    expect(r.changes.some((c) => c.startsWith('/etc/fstab:2: /dev/sda1 → UUID='))).toBe(true);
    expect(await leftMounted()).toEqual([]);

    const files = ['etc/fstab', 'etc/default/grub', 'etc/initramfs-tools/modules', 'boot/grub/grub.cfg'].map(read);
    const again = await configureSystem(input);
    expect(['etc/fstab', 'etc/default/grub', 'etc/initramfs-tools/modules', 'boot/grub/grub.cfg'].map(read)).toEqual(files);
    expect(again.changes.filter((c) => c.startsWith('/etc/'))).toEqual([]);
  });

  it('grub-mkconfig failing half way: FERRY_CONFIGURE_FAILED, the failure logged on the target, nothing mounted, the file system clean', async () => {
    plantSystem(true);
    await expect(configureSystem(input)).rejects.toMatchObject({ code: 'FERRY_CONFIGURE_FAILED', message: expect.stringContaining('failed to get canonical path') });
    expect(await leftMounted()).toEqual([]);
    expect(read('var/log/ferry-configure.log')).toMatch(/\nFAILED: .*grub-mkconfig/);
    // What was done before the failure is done whole: a run after the fix finishes the job.
    expect(read('etc/fstab')).toContain(`UUID=${uuid} /`);
    sh('umount', [root]);
    try {
      sh('e2fsck', ['-fn', disk.part(1)]);
    } finally {
      sh('mount', [disk.part(1), root]);
    }
  });

  it('an unknown system is refused, naming what was found, with nothing changed', async () => {
    plantSystem();
    writeFileSync(at('etc/os-release'), 'PRETTY_NAME="Alpine Linux v3.19"\nID=alpine\nVERSION_ID=3.19.1\n');
    const before = read('etc/fstab');
    await expect(configureSystem(input)).rejects.toMatchObject({ code: 'FERRY_CONFIGURE_UNSUPPORTED', message: expect.stringContaining('Alpine Linux v3.19 (ID=alpine VERSION_ID=3.19.1)') });
    expect(read('etc/fstab')).toBe(before);
    expect(await leftMounted()).toEqual([]);
  });
});
