// The RHEL family under UEFI, on files recorded from RHEL 8 and RHEL 9
// (test/fixtures/configure/rhel8, rhel9): which EFI/<dir>/grub.cfg the
// system's shim and GRUB read (redhat, centos, rocky, almalinux, fedora);
// RHEL 7/8's is the whole configuration (grub2-mkconfig writes it), RHEL 9's
// and Fedora's a stub whose search by UUID must find the TARGET's /boot (or
// / when there is none) and whose prefix must be the GRUB directory there;
// RHEL 8's kernelopts in grubenv and RHEL 9's /etc/kernel/cmdline name the
// root and swap by UUID like GRUB_CMDLINE_LINUX, at the block's own size.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flattenLvm } from '../../../../src/layout/flatten-lvm.js';
import { LayoutSchema, type Layout } from '../../../../src/layout/model.js';
import { bootFsOf, targetKernelopts } from '../../../../src/receiver/configure/boot-loader.js';
import { detectDistro } from '../../../../src/receiver/configure/distro.js';
import { efiConfigDir, efiGrubCfgKind, fixEfiStub, rewriteGrubenv } from '../../../../src/receiver/configure/efi-grub-cfg.js';
import { rewriteKernelCmdlineFile } from '../../../../src/receiver/configure/kernel-cmdline.js';
import { DeviceResolver, targetVolumes } from '../../../../src/receiver/configure/target-volumes.js';

const fixture = (p: string) => readFileSync(join(__dirname, '../../../fixtures/configure', p), 'utf8');
const SOURCE_BOOT = '8d1f5c3e-52a4-4d0c-8d0e-2b3f0a6c9e01';
const TARGET_BOOT = '0b7c6d5e-4f3a-4b2c-9d1e-0f9e8d7c6b5a';
const ROOT = '6b8f0a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const SWAP = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

/** RHEL's default UEFI layout: ESP, /boot xfs, a PV of VG rhel (root, swap); the LVs become partitions on the target. */
function rhelUefi(o: { separateBoot?: boolean; newBootUuid?: boolean } = {}): { requested: Layout; made: Layout } {
  const separateBoot = o.separateBoot ?? true;
  const requested = LayoutSchema.parse({
    version: 1,
    disks: [
      {
        name: 'disk0',
        sizeBytes: 20 * 2 ** 30,
        table: 'gpt',
        partitions: [
          { id: 'disk0p1', number: 1, sizeBytes: 600 << 20, type: ESP, sourceDevice: '/dev/sda1', content: { kind: 'filesystem', fsType: 'vfat', uuid: '5C2A-11F0', mountPoint: '/boot/efi' } },
          ...(separateBoot ? [{ id: 'disk0p2', number: 2, sizeBytes: 1 << 30, type: LINUX, sourceDevice: '/dev/sda2', content: { kind: 'filesystem', fsType: 'xfs', uuid: SOURCE_BOOT, mountPoint: '/boot' } }] : []),
          { id: 'disk0p3', number: 3, sizeBytes: 18 * 2 ** 30, type: 'E6D6D379-F507-44C2-A23C-238F2A3DF928', sourceDevice: '/dev/sda3', content: { kind: 'lvm-pv', vg: 'rhel' } },
        ],
      },
    ],
    volumeGroups: [
      {
        name: 'rhel',
        logicalVolumes: [
          { id: 'rhel-root', name: 'root', sizeBytes: 16 * 2 ** 30, sourceDevice: '/dev/mapper/rhel-root', content: { kind: 'filesystem', fsType: 'xfs', uuid: ROOT, mountPoint: '/' } },
          { id: 'rhel-swap', name: 'swap', sizeBytes: 2 * 2 ** 30, sourceDevice: '/dev/mapper/rhel-swap', content: { kind: 'swap', uuid: SWAP } },
        ],
      },
    ],
  });
  const made = flattenLvm(requested).layout;
  if (o.newBootUuid) {
    const boot = made.disks[0]!.partitions.find((p) => p.id === 'disk0p2')!;
    boot.content = { ...(boot.content as Extract<Layout['disks'][0]['partitions'][0]['content'], { kind: 'filesystem' }>), uuid: TARGET_BOOT };
  }
  return { requested, made };
}
const resolverOf = (l: { requested: Layout; made: Layout }) => new DeviceResolver(targetVolumes(l.requested, l.made));
const rhel8 = detectDistro(fixture('rhel8/os-release'), () => true);
const rhel9 = detectDistro(fixture('rhel9/os-release'), () => true);

describe('the grub.cfg a RHEL-family system boots from under UEFI', () => {
  it('is in EFI/<dir> of its ID: redhat, centos, rocky, almalinux, fedora; never EFI/BOOT; several unknown ones are ambiguous', () => {
    expect(efiConfigDir('rhel', ['BOOT', 'redhat'])).toBe('redhat');
    expect(efiConfigDir('centos', ['centos', 'BOOT'])).toBe('centos');
    expect(efiConfigDir('rocky', ['rocky'])).toBe('rocky');
    expect(efiConfigDir('almalinux', ['BOOT', 'almalinux'])).toBe('almalinux');
    expect(efiConfigDir('fedora', ['fedora'])).toBe('fedora');
    expect(efiConfigDir('ol', ['redhat'])).toBe('redhat');
    expect(efiConfigDir('rhel', ['centos'])).toBe('centos'); // the only one there
    expect(efiConfigDir('rhel', ['centos', 'rocky'])).toBeUndefined();
    expect(efiConfigDir('rhel', ['BOOT'])).toBeUndefined();
  });

  it("RHEL 8's is the whole configuration (grub2-mkconfig writes there); RHEL 9's is a stub", () => {
    expect(efiGrubCfgKind(fixture('rhel8/efi-grub.cfg'))).toBe('full');
    expect(efiGrubCfgKind(fixture('rhel9/efi-grub.cfg'))).toBe('stub');
  });

  it("RHEL 9's stub searches for the target's /boot by UUID (here the receiver had to give it a new one) with prefix /grub2; nothing else changes; again: nothing", () => {
    const before = fixture('rhel9/efi-grub.cfg');
    const bootFs = bootFsOf(resolverOf(rhelUefi({ newBootUuid: true })), rhel9);
    expect(bootFs).toEqual({ uuid: TARGET_BOOT, grubDir: '/grub2' });
    const { text, changes } = fixEfiStub(before, bootFs, '/boot/efi/EFI/redhat/grub.cfg');
    expect(text).toBe(before.replace(SOURCE_BOOT, TARGET_BOOT));
    expect(changes).toEqual([`/boot/efi/EFI/redhat/grub.cfg: the stub searches for the GRUB directory's file system by UUID ${TARGET_BOOT} (was ${SOURCE_BOOT})`]);
    expect(fixEfiStub(text, bootFs, 'f')).toEqual({ text, changes: [] });
    // The same UUID on the target (the usual case): the stub is left as it is.
    expect(fixEfiStub(before, bootFsOf(resolverOf(rhelUefi()), rhel9), 'f')).toEqual({ text: before, changes: [] });
  });

  it('without a separate /boot the stub names / and /boot/grub2 on it', () => {
    const bootFs = bootFsOf(resolverOf(rhelUefi({ separateBoot: false })), rhel9);
    expect(bootFs).toEqual({ uuid: ROOT, grubDir: '/boot/grub2' });
    const { text } = fixEfiStub(fixture('rhel9/efi-grub.cfg'), bootFs, 'f');
    expect(text).toBe(`search --no-floppy --root-dev-only --fs-uuid --set=dev ${ROOT}\nset prefix=($dev)/boot/grub2\n\nexport $prefix\nconfigfile $prefix/grub.cfg\n`);
  });

  it('a stub it cannot point at the target is refused rather than left pointing elsewhere', () => {
    expect(() => fixEfiStub('configfile (hd0,gpt2)/grub2/grub.cfg\n', { uuid: ROOT, grubDir: '/grub2' }, '/boot/efi/EFI/redhat/grub.cfg')).toThrow(/EFI\/redhat\/grub\.cfg hands over to another grub\.cfg without a search by UUID/);
  });
});

describe('kernel command lines kept outside /etc/default/grub', () => {
  it("RHEL 8's grubenv kernelopts: LVs that became partitions by UUID, their rd.lvm.lv dropped, net.ifnames=0 biosdevname=0 added; still 1024 bytes; again: nothing", () => {
    const before = fixture('rhel8/grubenv');
    const i = { resolver: resolverOf(rhelUefi()), receiverDevices: ['/dev/loop3', '/dev/loop3p1', '/dev/loop3p2', '/dev/loop3p3'] };
    const { text, changes } = rewriteGrubenv(before, (k) => targetKernelopts(k, i, rhel8), '/boot/efi/EFI/redhat/grubenv');
    expect(text).toContain(`\nkernelopts=root=UUID=${ROOT} ro crashkernel=auto resume=UUID=${SWAP} rhgb quiet net.ifnames=0 biosdevname=0\n`);
    expect(text).toContain('\nsaved_entry=2c1e5b8d0f7a4e3c9b6a1d2e3f4a5b6c-4.18.0-513.5.1.el8_9.x86_64\n');
    expect(text).toMatch(/\nboot_success=0\n#+$/);
    expect(Buffer.byteLength(text)).toBe(1024);
    expect(changes).toHaveLength(6);
    expect(rewriteGrubenv(text, (k) => targetKernelopts(k, i, rhel8), 'g')).toEqual({ text, changes: [] });
  });

  it('kernelopts that grub2-mkconfig wrote without udev (root=/dev/loop3p3) name the target root by UUID', () => {
    const i = { resolver: resolverOf(rhelUefi()), receiverDevices: ['/dev/loop3', '/dev/loop3p3'] };
    const written = fixture('rhel8/grubenv').replace('root=/dev/mapper/rhel-root', 'root=/dev/loop3p3');
    const { text } = rewriteGrubenv(written, (k) => targetKernelopts(k, i, rhel8), 'g');
    expect(text).toContain(`kernelopts=root=UUID=${ROOT} ro`);
    expect(text).not.toContain('/dev/loop');
  });

  it("RHEL 9's /etc/kernel/cmdline (copied into the BLS entries of kernels installed later) is rewritten like GRUB_CMDLINE_LINUX", () => {
    const { text, changes } = rewriteKernelCmdlineFile(fixture('rhel9/kernel-cmdline'), resolverOf(rhelUefi()), { add: ['net.ifnames=0', 'biosdevname=0'] });
    expect(text).toBe(`root=UUID=${ROOT} ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=UUID=${SWAP} net.ifnames=0 biosdevname=0\n`);
    expect(changes.every((c) => c.startsWith('/etc/kernel/cmdline: '))).toBe(true);
    expect(rewriteKernelCmdlineFile(text, resolverOf(rhelUefi()), { add: ['net.ifnames=0', 'biosdevname=0'] })).toEqual({ text, changes: [] });
  });
});
