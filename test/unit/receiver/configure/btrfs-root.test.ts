// A Debian 12 server whose / is the btrfs subvolume '@' (the installer's
// default for btrfs), with /boot inside it and an ESP beside it, on files
// recorded from such a system (test/fixtures/configure/debian12-btrfs/):
// GRUB reads btrfs from its top level, so the GRUB directory the core image
// and its early config name is /@/boot/grub on the root's UUID; the root is
// found through its subvolume (discovery lists the file system with no mount
// point of its own and '@' mounted at '/'), so a receiver-side root= in the
// generated grub.cfg still becomes the root's UUID; rootflags=subvol=@
// survives every kernel command line rewrite.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LayoutSchema, type Layout } from '../../../../src/layout/model.js';
import { bootDiskOf, bootFsOf, efiEarlyConfig, efiMkimageArgs, grubCfgTargets } from '../../../../src/receiver/configure/boot-loader.js';
import { fixGrubCfg } from '../../../../src/receiver/configure/grub-cfg.js';
import { rewriteFstab } from '../../../../src/receiver/configure/fstab.js';
import { rewriteBlsEntry, rewriteCmdline, rewriteDefaultGrub } from '../../../../src/receiver/configure/kernel-cmdline.js';
import { DeviceResolver, targetVolumes } from '../../../../src/receiver/configure/target-volumes.js';

const fixture = (p: string) => readFileSync(join(__dirname, '../../../fixtures/configure/debian12-btrfs', p), 'utf8');
const ROOT = '4a9e1c2b-7d3f-4e8a-9b6c-1f2e3d4c5b6a';
const BOOT = '2f0e2b7a-3d1c-4b7e-9a55-0c2f6a3e7b11';
const ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

/** As discovery describes it: the btrfs has no mount point of its own; '@' is /, '@home' /home. */
function layout(separateBoot = false): Layout {
  return LayoutSchema.parse({
    version: 1,
    disks: [
      {
        name: 'disk0',
        sizeBytes: 8 * 2 ** 30,
        table: 'gpt',
        partitions: [
          { id: 'disk0p1', number: 1, sizeBytes: 512 << 20, type: ESP, sourceDevice: '/dev/sda1', content: { kind: 'filesystem', fsType: 'vfat', uuid: '7E3A-1C05', mountPoint: '/boot/efi' } },
          {
            id: 'disk0p2',
            number: 2,
            sizeBytes: 6 * 2 ** 30,
            type: LINUX,
            sourceDevice: '/dev/sda2',
            content: { kind: 'filesystem', fsType: 'btrfs', uuid: ROOT, mountPoint: '', subvolumes: [{ path: '@', mountPoint: '/' }, { path: '@home', mountPoint: '/home' }, { path: '@/.snapshots/1/snapshot', readOnlyOnSource: true }] },
          },
          ...(separateBoot ? [{ id: 'disk0p3', number: 3, sizeBytes: 1 << 30, type: LINUX, sourceDevice: '/dev/sda3', content: { kind: 'filesystem', fsType: 'ext4', uuid: BOOT, mountPoint: '/boot' } }] : []),
        ],
      },
    ],
  });
}
const resolverOf = (l: Layout) => new DeviceResolver(targetVolumes(l, l));

describe('a btrfs root on subvolume @', () => {
  it('the GRUB directory is /@/boot/grub on the root file system (grub2: /@/boot/grub2); with a /boot of its own, /grub there', () => {
    const r = resolverOf(layout());
    expect(bootFsOf(r, { grub: 'grub' })).toEqual({ uuid: ROOT, grubDir: '/@/boot/grub' });
    expect(bootFsOf(r, { grub: 'grub2' })).toEqual({ uuid: ROOT, grubDir: '/@/boot/grub2' });
    expect(bootFsOf(resolverOf(layout(true)), { grub: 'grub' })).toEqual({ uuid: BOOT, grubDir: '/grub' });
  });

  it('the UEFI core image made without vfat (grub-mkimage) finds that directory by the root UUID, and -p names it too', () => {
    const bootFs = bootFsOf(resolverOf(layout()), { grub: 'grub' });
    expect(efiEarlyConfig(bootFs)).toBe(`search.fs_uuid ${ROOT} root\nset prefix=($root)/@/boot/grub\n`);
    const args = efiMkimageArgs(bootFs, '/tmp/early.cfg', '/tmp/core.efi');
    expect(args.slice(0, 8)).toEqual(['-O', 'x86_64-efi', '-o', '/tmp/core.efi', '-c', '/tmp/early.cfg', '-p', '/@/boot/grub']);
    expect(args).toContain('btrfs');
  });

  it('grub.cfg written without udev: root=/dev/loop2p2 becomes the root UUID, rootflags=subvol=@ and the /@/boot paths stay', () => {
    const before = fixture('grub.cfg');
    const t = grubCfgTargets({ resolver: resolverOf(layout()), receiverDevices: ['/dev/loop2', '/dev/loop2p1', '/dev/loop2p2'] });
    expect(t.rootUuid).toBe(ROOT);
    const { text, changes } = fixGrubCfg(before, t, '/boot/grub/grub.cfg');
    expect(text).toContain(`\tlinux\t/@/boot/vmlinuz-6.1.0-28-cloud-amd64 root=UUID=${ROOT} ro rootflags=subvol=@ console=ttyS0 net.ifnames=0 quiet\n`);
    expect(text.split('\n').filter((l) => !l.includes('\tlinux\t'))).toEqual(before.split('\n').filter((l) => !l.includes('\tlinux\t')));
    expect(changes).toHaveLength(1);
  });

  it('/etc/default/grub, BLS options and a bare root= keep rootflags=subvol=@ and name the root by UUID; fstab keeps subvol= options', () => {
    const r = resolverOf(layout());
    const grub = rewriteDefaultGrub(fixture('grub'), r, { add: ['net.ifnames=0'] });
    expect(grub.text).toContain(`GRUB_CMDLINE_LINUX="console=ttyS0 root=UUID=${ROOT} rootflags=subvol=@ net.ifnames=0"`);
    const bls = rewriteBlsEntry('title Fedora\noptions root=/dev/sda2 ro rootflags=subvol=root\n', r, { add: [] }, 'e.conf');
    expect(bls.text).toBe(`title Fedora\noptions root=UUID=${ROOT} ro rootflags=subvol=root\n`);
    // A device path the layout does not know, for /: found through the subvolume mounted there.
    expect(rewriteCmdline('root=/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:0:0-part2 rootflags=subvol=@', r, { add: [] }).cmdline).toBe(`root=UUID=${ROOT} rootflags=subvol=@`);
    const fstab = rewriteFstab(fixture('fstab'), r);
    expect(fstab.text).toContain(`UUID=${ROOT}       /               btrfs   defaults,subvol=@       0       0`);
    expect(fstab.text).toContain(`UUID=${ROOT}       /home           btrfs   defaults,subvol=@home   0       0`);
  });

  it('the boot disk is the one holding / through its subvolume when there is no ESP', () => {
    const l = layout();
    l.disks[0]!.partitions.shift();
    l.disks.unshift(LayoutSchema.parse({ version: 1, disks: [{ name: 'data', sizeBytes: 1, table: 'dos', partitions: [] }] }).disks[0]!);
    expect(bootDiskOf(l, new Map(), new Map([['data', '/dev/loop1'], ['disk0', '/dev/loop2']]))).toMatchObject({ name: 'disk0', device: '/dev/loop2' });
  });
});
