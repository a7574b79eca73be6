// A small stand-in for a migrated Debian system, planted into a directory
// (a mounted target tree): /bin/sh is a static busybox; update-initramfs,
// grub-install and grub-mkconfig are shell scripts that record how they were
// called in /var/tmp/calls (grub-install checks that its device is a block
// device; grub-mkconfig writes what the real one writes in a chroot without
// udev: root=<a device path>); a kernel's modules.dep names the virtio and
// nvme drivers. Its fstab and GRUB_CMDLINE_LINUX name the root /dev/sda1.
// The real Debian 12 image and its boot are the boot-lab tests'.

import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const FAKE_KERNEL = '6.1.0-27-cloud-amd64';

const script = (body: string) => `#!/bin/sh\n${body}\n`;

export interface FakeDebianOptions {
  /** The root device grub-mkconfig writes into grub.cfg (the receiver's, as without udev). */
  mkconfigRoot: string;
  /** grub-mkconfig fails (a step failing half way). */
  mkconfigFails?: boolean;
}

export function plantFakeDebian(root: string, o: FakeDebianOptions): void {
  const at = (p: string) => join(root, p);
  for (const d of ['bin', 'etc/default', 'etc/initramfs-tools', 'usr/sbin', 'usr/lib/grub/i386-pc', `lib/modules/${FAKE_KERNEL}`, 'var/log', 'var/tmp', 'boot/grub', 'tmp', 'dev', 'proc', 'sys', 'run']) {
    mkdirSync(at(d), { recursive: true });
  }
  copyFileSync('/bin/busybox', at('bin/busybox'));
  copyFileSync('/bin/busybox', at('bin/sh'));
  chmodSync(at('bin/sh'), 0o755);
  writeFileSync(at('etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n');
  writeFileSync(at('etc/fstab'), '# <file system> <mount point> <type> <options> <dump> <pass>\n/dev/sda1 / ext4 errors=remount-ro 0 1\nproc /proc proc defaults 0 0\n');
  writeFileSync(at('etc/default/grub'), 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="console=ttyS0 root=/dev/sda1"\n');
  writeFileSync(at('etc/initramfs-tools/modules'), '# List of modules that you want to include in your initramfs.\n');
  writeFileSync(at(`lib/modules/${FAKE_KERNEL}/modules.dep`), ['virtio_blk', 'virtio_net', 'virtio_scsi', 'nvme'].map((m) => `kernel/drivers/x/${m}.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz`).join('\n') + '\n');
  writeFileSync(at(`lib/modules/${FAKE_KERNEL}/modules.builtin`), 'kernel/drivers/virtio/virtio_pci.ko\n');
  // The tools prove where they run: /proc is the chroot's mount, the device a block device of the bound /dev.
  writeFileSync(at('usr/sbin/update-initramfs'), script('test -r /proc/self/status || exit 7\necho "update-initramfs $*" >> /var/tmp/calls'));
  writeFileSync(at('usr/sbin/grub-install'), script('test -b "$2" || exit 8\necho "grub-install $*" >> /var/tmp/calls'));
  writeFileSync(
    at('usr/sbin/grub-mkconfig'),
    o.mkconfigFails
      ? script('echo "grub-mkconfig: error: failed to get canonical path of overlay" >&2\nexit 1')
      : script(`echo "grub-mkconfig $* OS_PROBER=$GRUB_DISABLE_OS_PROBER" >> /var/tmp/calls\nprintf 'menuentry "Debian" {\\n\\tlinux /vmlinuz root=${o.mkconfigRoot} ro console=ttyS0\\n}\\n' > "$2"`),
  );
  for (const t of ['update-initramfs', 'grub-install', 'grub-mkconfig']) chmodSync(at(`usr/sbin/${t}`), 0o755);
}
