// configure on a RHEL-family system that boots with UEFI, on a real GPT loop
// disk with a real FAT ESP (written with mtools: this kernel has no vfat, as
// on these machines) and a small stand-in for the system in the root file
// system (busybox as /bin/sh, dracut and grub2-mkconfig as scripts that
// record their calls; grub2-mkconfig writes what the real one writes
// without udev: root=<the receiver's loop device>). Shown: on RHEL 9 the
// ESP's stub EFI/redhat/grub.cfg is pointed at the target's file system
// holding /boot/grub2 (its UUID and prefix) and /boot/grub2/grub.cfg is
// generated; on RHEL 8 grub2-mkconfig's output becomes the ESP's
// EFI/redhat/grub.cfg (the file that GRUB reads) with the root by UUID, and
// the ESP's grubenv kernelopts name the root by UUID; nothing is left
// mounted or behind in the target's /tmp; a second run changes nothing on
// the ESP. (The unit tests hold the recorded RHEL files: rhel-uefi.test.ts.)
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LayoutSchema } from '../../src/layout/model.js';
import { configureSystem, type ConfigureInput } from '../../src/receiver/configure/configure-system.js';
import { mountsUnder } from '../../src/receiver/system/mounts.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';

const MiB = 1024 * 1024;
const env = needs({ root: true, tools: ['busybox', 'chroot', 'sfdisk', 'mkfs.ext4', 'mkfs.vfat', 'mcopy', 'mmd', 'mtype', 'blkid'] });
const log = pino({ level: 'silent' });
const OLD_UUID = '8d1f5c3e-52a4-4d0c-8d0e-2b3f0a6c9e01';
const KERNEL = '5.14.0-427.13.1.el9_4.x86_64';
/** An mtools command on the ESP image (mtools refuses FAT geometry it doubts without MTOOLS_SKIP_CHECK). */
const mtools = (cmd: string, args: string[]) => sh('env', ['MTOOLS_SKIP_CHECK=1', cmd, ...args]);

describe.runIf(env.ok)('configure a RHEL-family system that boots with UEFI', () => {
  let disk: LoopDisk;
  let root: string;
  let uuid: string;
  let esp: string;
  let input: ConfigureInput;
  const at = (p: string) => join(root, p);
  const read = (p: string) => readFileSync(at(p), 'utf8');
  const espRead = (p: string) => mtools('mtype', ['-i', esp, `::/${p}`]);
  const espPut = (p: string, text: string) => {
    const f = at('var/tmp/esp-put');
    writeFileSync(f, text);
    mtools('mcopy', ['-o', '-i', esp, f, `::/${p}`]);
  };

  /** A RHEL stand-in: os-release of `version`, dracut and grub2-mkconfig recording their calls in /var/tmp/calls. */
  const plantRhel = (version: '8.9' | '9.4') => {
    for (const d of ['bin', 'etc/default', 'etc/dracut.conf.d', 'usr/bin', 'usr/sbin', 'usr/lib/grub/x86_64-efi', `lib/modules/${KERNEL}`, 'var/log', 'var/tmp', 'boot/grub2', 'tmp', 'dev', 'proc', 'sys', 'run']) mkdirSync(at(d), { recursive: true });
    copyFileSync('/bin/busybox', at('bin/sh'));
    chmodSync(at('bin/sh'), 0o755);
    writeFileSync(at('etc/os-release'), `NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="${version}"\nPRETTY_NAME="Red Hat Enterprise Linux ${version}"\n`);
    writeFileSync(at('etc/fstab'), '/dev/sda2 / ext4 defaults 0 0\n');
    writeFileSync(at('etc/default/grub'), 'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="crashkernel=auto rhgb quiet"\nGRUB_ENABLE_BLSCFG=true\n');
    writeFileSync(at(`lib/modules/${KERNEL}/modules.dep`), 'kernel/drivers/block/virtio_blk.ko.xz:\nkernel/drivers/net/virtio_net.ko.xz:\n');
    writeFileSync(at('usr/bin/dracut'), '#!/bin/sh\necho "dracut $*" >> /var/tmp/calls\n');
    writeFileSync(at('usr/sbin/grub2-mkconfig'), `#!/bin/sh\necho "grub2-mkconfig $*" >> /var/tmp/calls\nprintf 'insmod blscfg\\nblscfg\\nmenuentry "RHEL" {\\n\\tlinux /vmlinuz root=${disk.part(2)} ro\\n}\\n' > "$2"\n`);
    for (const t of ['usr/bin/dracut', 'usr/sbin/grub2-mkconfig']) chmodSync(at(t), 0o755);
  };

  beforeAll(() => {
    disk = LoopDisk.create(96 * MiB, 'ferry-configure-rhel-');
    sh('sfdisk', ['--quiet', disk.device], 'label: gpt\n,32M,C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n,,0FC63DAF-8483-4772-8E79-3D69D8477DE4\n');
    disk.rescan();
    for (let i = 0; i < 50 && !existsSync(disk.part(2)); i++) sh('sleep', ['0.05']);
    esp = disk.part(1);
    sh('mkfs.vfat', ['-i', '5C2A11F0', esp]);
    sh('mkfs.ext4', ['-q', '-F', disk.part(2)]);
    uuid = sh('blkid', ['-s', 'UUID', '-o', 'value', disk.part(2)]).trim();
    root = disk.mount(disk.part(2));
    const layout = LayoutSchema.parse({
      version: 1,
      disks: [
        {
          name: 'disk0',
          sizeBytes: 96 * MiB,
          table: 'gpt',
          partitions: [
            { id: 'disk0p1', number: 1, sizeBytes: 32 * MiB, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', sourceDevice: '/dev/sda1', content: { kind: 'filesystem', fsType: 'vfat', uuid: '5C2A-11F0', mountPoint: '/boot/efi' } },
            { id: 'disk0p2', number: 2, sizeBytes: 63 * MiB, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', sourceDevice: '/dev/sda2', content: { kind: 'filesystem', fsType: 'ext4', uuid, mountPoint: '/' } },
          ],
        },
      ],
    });
    input = { root, requested: layout, made: layout, devices: new Map([['disk0p1', esp], ['disk0p2', disk.part(2)]]), diskDevices: new Map([['disk0', disk.device]]), keepStaticNetwork: false, log };
  });
  afterAll(() => disk?.destroy());
  beforeEach(() => {
    sh('rm', ['-rf', '--one-file-system', ...['bin', 'etc', 'usr', 'lib', 'var', 'boot', 'tmp'].map(at)]);
    try {
      mtools('mdeltree', ['-i', esp, '::/EFI']);
    } catch {
      /* a fresh ESP has no EFI/ yet */
    }
  });

  it("RHEL 9: the ESP's stub finds / by the target's UUID with prefix /boot/grub2, and /boot/grub2/grub.cfg is generated with the root by UUID; again: the stub stays", async () => {
    plantRhel('9.4');
    mtools('mmd', ['-i', esp, '::/EFI', '::/EFI/redhat', '::/EFI/BOOT']);
    espPut('EFI/redhat/grub.cfg', `search --no-floppy --root-dev-only --fs-uuid --set=dev ${OLD_UUID}\nset prefix=($dev)/grub2\n\nexport $prefix\nconfigfile $prefix/grub.cfg\n`);

    const r = await configureSystem(input);
    expect(espRead('EFI/redhat/grub.cfg')).toBe(`search --no-floppy --root-dev-only --fs-uuid --set=dev ${uuid}\nset prefix=($dev)/boot/grub2\n\nexport $prefix\nconfigfile $prefix/grub.cfg\n`);
    expect(read('boot/grub2/grub.cfg')).toContain(`\tlinux /vmlinuz root=UUID=${uuid} ro\n`);
    expect(read('var/tmp/calls').split('\n')).toEqual(['dracut -f -N --regenerate-all', 'grub2-mkconfig -o /boot/grub2/grub.cfg', '']);
    expect(read('var/log/ferry-configure.log')).toContain(`/boot/efi/EFI/redhat/grub.cfg: the stub searches for the GRUB directory's file system by UUID ${uuid} (was ${OLD_UUID})`);
    expect(r.changes).toContain('/boot/efi/EFI/redhat/grub.cfg: the stub\'s prefix is /boot/grub2 on that file system (was /grub2)');
    expect((await mountsUnder(root)).filter((m) => m !== root)).toEqual([]);

    const again = await configureSystem(input);
    expect(again.changes.filter((c) => c.includes('EFI/redhat'))).toEqual([]);
  });

  it("RHEL 8: grub2-mkconfig's output becomes the ESP's EFI/redhat/grub.cfg (root by UUID), the ESP's grubenv kernelopts name the root by UUID, /boot/grub2/grub.cfg is not made, nothing is left in /tmp", async () => {
    plantRhel('8.9');
    mtools('mmd', ['-i', esp, '::/EFI', '::/EFI/redhat', '::/EFI/BOOT']);
    espPut('EFI/redhat/grub.cfg', '### BEGIN /etc/grub.d/00_header ###\nset pager=1\n### END /etc/grub.d/00_header ###\ninsmod blscfg\nblscfg\n');
    const env = '# GRUB Environment Block\nkernelopts=root=/dev/sda2 ro crashkernel=auto rhgb quiet \nboot_success=0\n';
    espPut('EFI/redhat/grubenv', env + '#'.repeat(1024 - env.length));

    const r = await configureSystem(input);
    expect(espRead('EFI/redhat/grub.cfg')).toBe(`insmod blscfg\nblscfg\nmenuentry "RHEL" {\n\tlinux /vmlinuz root=UUID=${uuid} ro\n}\n`);
    const grubenv = espRead('EFI/redhat/grubenv');
    expect(grubenv).toContain(`\nkernelopts=root=UUID=${uuid} ro crashkernel=auto rhgb quiet net.ifnames=0 biosdevname=0\nboot_success=0\n#`);
    expect(grubenv).toHaveLength(1024);
    expect(read('var/tmp/calls').split('\n')).toEqual(['dracut -f -N --regenerate-all', 'grub2-mkconfig -o /tmp/ferry-grub.cfg', '']);
    expect(existsSync(at('boot/grub2/grub.cfg'))).toBe(false);
    expect(existsSync(at('tmp/ferry-grub.cfg'))).toBe(false);
    expect(r.changes).toContain('/boot/efi/EFI/redhat/grub.cfg regenerated (grub2-mkconfig)');
    expect((await mountsUnder(root)).filter((m) => m !== root)).toEqual([]);

    await configureSystem(input);
    expect(espRead('EFI/redhat/grubenv')).toBe(grubenv);
  });
});
