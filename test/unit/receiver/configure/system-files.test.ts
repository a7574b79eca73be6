// The rewrites configure makes in a migrated system's files, on files
// recorded from a Debian 12 and a RHEL 8 server (test/fixtures/configure/):
// fstab, crypttab, the resume device, /etc/default/grub, BLS entries and the
// generated grub.cfg name the target's file systems by UUID (LVs that became
// partitions included) and nothing else in them changes; each rewrite run
// again on its own result changes nothing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flattenLvm } from '../../../../src/layout/flatten-lvm.js';
import { LayoutSchema, type Layout } from '../../../../src/layout/model.js';
import { detectDistro } from '../../../../src/receiver/configure/distro.js';
import { rewriteCrypttab, rewriteFstab, rewriteResumeConf } from '../../../../src/receiver/configure/fstab.js';
import { fixGrubCfg } from '../../../../src/receiver/configure/grub-cfg.js';
import { rewriteBlsEntry, rewriteCmdline, rewriteDefaultGrub } from '../../../../src/receiver/configure/kernel-cmdline.js';
import { DeviceResolver, mapperName, targetVolumes } from '../../../../src/receiver/configure/target-volumes.js';

const fixture = (p: string) => readFileSync(join(__dirname, '../../../fixtures/configure', p), 'utf8');

const U = {
  boot: '2f0e2b7a-3d1c-4b7e-9a55-0c2f6a3e7b11',
  root: '6b8f0a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
  swap: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
  srv: 'c0ffee00-1111-4222-8333-444455556666',
  scratchSource: '11111111-2222-4333-8444-555566667777',
  scratchTarget: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeffff0000',
};

const part = (id: string, number: number, type: string, content: object, sourceDevice = '') => ({ id, number, sizeBytes: 100 << 20, type, sourceDevice, content });

/** The Debian server: GPT with BIOS boot, /boot, /, swap, an ESP, a scratch btrfs, an LV vg0/srv-data. */
function debian(): { requested: Layout; made: Layout } {
  const requested = LayoutSchema.parse({
    version: 1,
    disks: [
      {
        name: 'disk0',
        sizeBytes: 4 * 2 ** 30,
        table: 'gpt',
        partitions: [
          part('disk0p1', 1, '21686148-6449-6E6F-744E-656564454649', { kind: 'none' }, '/dev/sda1'),
          part('disk0p2', 2, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', { kind: 'filesystem', fsType: 'ext4', uuid: U.boot, mountPoint: '/boot' }, '/dev/sda2'),
          part('disk0p3', 3, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', { kind: 'filesystem', fsType: 'xfs', uuid: U.root, mountPoint: '/' }, '/dev/sda3'),
          part('disk0p4', 4, '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', { kind: 'swap', uuid: U.swap }, '/dev/sda4'),
          part('disk0p5', 5, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', { kind: 'filesystem', fsType: 'vfat', uuid: '5C2A-11F0', mountPoint: '/boot/efi' }, '/dev/sda5'),
          part('disk0p6', 6, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', { kind: 'filesystem', fsType: 'btrfs', uuid: U.scratchSource, label: 'scratch', mountPoint: '/scratch' }, '/dev/sda6'),
          part('disk0p7', 7, 'E6D6D379-F507-44C2-A23C-238F2A3DF928', { kind: 'lvm-pv', vg: 'vg0' }, '/dev/sda7'),
        ],
      },
    ],
    volumeGroups: [{ name: 'vg0', logicalVolumes: [{ id: 'vg0-srv-data', name: 'srv-data', sizeBytes: 50 << 20, sourceDevice: '/dev/mapper/vg0-srv--data', content: { kind: 'filesystem', fsType: 'ext4', uuid: U.srv, mountPoint: '/srv' } }] }],
  });
  const made = flattenLvm(requested).layout;
  // The receiver ran beside the source: the btrfs got a new UUID (format.ts).
  const scratch = made.disks[0]!.partitions.find((p) => p.id === 'disk0p6')!;
  scratch.content = { ...(scratch.content as Extract<Layout['disks'][0]['partitions'][0]['content'], { kind: 'filesystem' }>), uuid: U.scratchTarget };
  return { requested, made };
}

/** The RHEL 8 server: MBR, /boot xfs, a PV of VG rhel holding root and swap. */
function rhel(): { requested: Layout; made: Layout } {
  const requested = LayoutSchema.parse({
    version: 1,
    disks: [
      {
        name: 'disk0',
        sizeBytes: 20 * 2 ** 30,
        table: 'dos',
        partitions: [
          part('disk0p1', 1, '83', { kind: 'filesystem', fsType: 'xfs', uuid: '8d1f5c3e-52a4-4d0c-8d0e-2b3f0a6c9e01', mountPoint: '/boot' }, '/dev/sda1'),
          { ...part('disk0p2', 2, '8e', { kind: 'lvm-pv', vg: 'rhel' }, '/dev/sda2'), sizeBytes: 19 * 2 ** 30 },
        ],
      },
    ],
    volumeGroups: [
      {
        name: 'rhel',
        logicalVolumes: [
          { id: 'rhel-root', name: 'root', sizeBytes: 17 * 2 ** 30, sourceDevice: '/dev/mapper/rhel-root', content: { kind: 'filesystem', fsType: 'xfs', uuid: U.root, mountPoint: '/' } },
          { id: 'rhel-swap', name: 'swap', sizeBytes: 2 * 2 ** 30, sourceDevice: '/dev/mapper/rhel-swap', content: { kind: 'swap', uuid: U.swap } },
        ],
      },
    ],
  });
  return { requested, made: flattenLvm(requested).layout };
}

const resolverOf = (l: { requested: Layout; made: Layout }) => new DeviceResolver(targetVolumes(l.requested, l.made));

describe('targetVolumes and the resolver', () => {
  it('knows which LV became which partition and what the source called each volume', () => {
    const vols = targetVolumes(debian().requested, debian().made);
    expect(vols.find((v) => v.id === 'vg0-srv-data')).toMatchObject({ flattenedFrom: 'vg0/srv-data', uuid: U.srv, mountPoint: '/srv' });
    expect(vols.find((v) => v.id === 'disk0p6')).toMatchObject({ uuid: U.scratchTarget, sourceUuid: U.scratchSource });
    expect(mapperName('vg0/srv-data')).toBe('vg0-srv--data');
  });

  it('leaves names the target has alone: PARTUUID, LABEL, an unchanged UUID, LUKS mappings', () => {
    const r = resolverOf(debian());
    expect(r.resolve('PARTUUID=0d6f2c1e-01')).toBeUndefined();
    expect(r.resolve('LABEL=scratch')?.rewrite).toBeUndefined();
    expect(r.resolve(`UUID=${U.root}`)?.rewrite).toBeUndefined();
    expect(r.resolve('/dev/mapper/cryptroot', { mountPoint: '/' })).toBeUndefined();
    expect(r.resolve(`UUID=${U.scratchSource}`)?.rewrite).toBe(`UUID=${U.scratchTarget}`);
    expect(r.resolve('/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001-part3', { mountPoint: '/' })?.rewrite).toBe(`UUID=${U.root}`);
  });
});

describe('fstab', () => {
  it('Debian: device paths, the LV that became a partition and the btrfs whose UUID changed are named by UUID; comments, options, order and pseudo file systems stay', () => {
    const before = fixture('debian12/fstab');
    const { text, changes } = rewriteFstab(before, resolverOf(debian()));
    const lines = text.split('\n');
    expect(lines.find((l) => l.includes(' / '))).toBe(`UUID=${U.root}       /               xfs     defaults        0       1`);
    expect(lines.find((l) => l.includes('/boot '))).toMatch(new RegExp(`^UUID=${U.boot}\\s+/boot\\s+ext4\\s+defaults\\s+0\\s+2$`));
    expect(lines.find((l) => l.includes('swap'))).toMatch(new RegExp(`^UUID=${U.swap}\\s+none\\s+swap\\s+sw`));
    expect(lines.find((l) => l.includes('/srv'))).toMatch(new RegExp(`^UUID=${U.srv}\\s+/srv\\s+ext4\\s+noatime,nofail`));
    // The fstab names the scratch file system by label, which the receiver kept.
    expect(lines.find((l) => l.includes('/scratch'))).toBe('LABEL=scratch   /scratch        ext4    defaults        0       2');
    expect(lines.find((l) => l.includes('/boot/efi'))).toBe('UUID=5C2A-11F0  /boot/efi       vfat    umask=0077      0       1');
    // Everything else is byte for byte what it was.
    const untouched = (t: string) => t.split('\n').filter((l) => !/^(\/dev\/|UUID=)/.test(l) || l.includes('5C2A'));
    expect(untouched(text)).toEqual(untouched(before));
    expect(changes).toHaveLength(4);
    expect(changes.find((c) => c.includes('/srv'))).toContain('was LV vg0/srv-data');
    expect(rewriteFstab(text, resolverOf(debian()))).toEqual({ text, changes: [] });
  });

  it('RHEL: /dev/mapper/rhel-root and rhel-swap, flattened, become UUID=; /boot by UUID stays', () => {
    const { text, changes } = rewriteFstab(fixture('rhel8/fstab'), resolverOf(rhel()));
    expect(text).toContain(`UUID=${U.root}   /                       xfs     defaults        0 0`);
    expect(text).toContain(`UUID=${U.swap}   none                    swap    defaults        0 0`);
    expect(text).toContain('UUID=8d1f5c3e-52a4-4d0c-8d0e-2b3f0a6c9e01 /boot');
    expect(changes).toHaveLength(2);
  });

  it('crypttab and initramfs-tools resume follow the same rules', () => {
    const r = resolverOf(debian());
    const crypt = rewriteCrypttab('# <target name> <source device> <key file> <options>\ncswap /dev/sda4 /dev/urandom swap,cipher=aes-xts-plain64\n', r);
    expect(crypt.text).toBe(`# <target name> <source device> <key file> <options>\ncswap UUID=${U.swap} /dev/urandom swap,cipher=aes-xts-plain64\n`);
    const resume = rewriteResumeConf(fixture('debian12/resume'), r, '/etc/initramfs-tools/conf.d/resume');
    expect(resume.text).toBe(`RESUME=UUID=${U.swap}\n`);
    expect(rewriteResumeConf('RESUME=none\n', r, 'x').changes).toEqual([]);
  });
});

describe('kernel command lines', () => {
  it('/etc/default/grub (Debian): root= and resume= by UUID, net.ifnames=0 added to GRUB_CMDLINE_LINUX, GRUB_DISABLE_LINUX_UUID=true commented out; the rest stays', () => {
    const before = fixture('debian12/grub');
    const { text, changes } = rewriteDefaultGrub(before, resolverOf(debian()), { add: ['net.ifnames=0'] });
    expect(text).toContain(`GRUB_CMDLINE_LINUX="console=ttyS0 root=UUID=${U.root} resume=UUID=${U.swap} net.ifnames=0"`);
    expect(text).toContain('GRUB_CMDLINE_LINUX_DEFAULT="quiet"');
    expect(text).toContain('#GRUB_DISABLE_LINUX_UUID=true');
    expect(text.split('\n').length).toBe(before.split('\n').length);
    expect(changes).toHaveLength(4);
    expect(rewriteDefaultGrub(text, resolverOf(debian()), { add: ['net.ifnames=0'] })).toEqual({ text, changes: [] });
  });

  it('/etc/default/grub and BLS entries (RHEL 8): rd.lvm.lv of flattened LVs dropped, resume by UUID, biosdevname=0 too', () => {
    const r = resolverOf(rhel());
    const add = ['net.ifnames=0', 'biosdevname=0'];
    const grub = rewriteDefaultGrub(fixture('rhel8/grub'), r, { add });
    expect(grub.text).toContain(`GRUB_CMDLINE_LINUX="crashkernel=auto resume=UUID=${U.swap} rhgb quiet net.ifnames=0 biosdevname=0"`);
    const bls = rewriteBlsEntry(fixture('rhel8/bls.conf'), r, { add }, 'e.conf');
    expect(bls.text).toContain(`options root=UUID=${U.root} ro crashkernel=auto resume=UUID=${U.swap} rhgb quiet net.ifnames=0 biosdevname=0\n`);
    expect(bls.text.split('\n').filter((l) => !l.startsWith('options'))).toEqual(fixture('rhel8/bls.conf').split('\n').filter((l) => !l.startsWith('options')));
    expect(rewriteBlsEntry('options $kernelopts\n', r, { add }, 'e.conf').changes).toEqual([]);
  });

  it('an LV kept as an LV keeps its rd.lvm.lv', () => {
    const { requested } = rhel();
    const kept = new DeviceResolver(targetVolumes(requested, requested));
    expect(rewriteCmdline('root=/dev/mapper/rhel-root rd.lvm.lv=rhel/root', kept, { add: [] }).cmdline).toBe('root=/dev/mapper/rhel-root rd.lvm.lv=rhel/root');
  });
});

describe('grub.cfg written in a chroot without udev', () => {
  it('root=/dev/loop1p3 becomes root=UUID= of the target root; a receiver device left anywhere else fails', () => {
    const before = fixture('debian12/grub.cfg');
    const t = { rootUuid: U.root, swapUuid: U.swap, receiverDevices: ['/dev/loop1', '/dev/loop1p3'] };
    // The menuentry id names the loop device too: only the linux line is mended, so it is refused.
    expect(() => fixGrubCfg(before, t, '/boot/grub/grub.cfg')).toThrow(/grub\.cfg:1 names \/dev\/loop1p3/);
    const fine = before.replace("'gnulinux-simple-/dev/loop1p3'", `'gnulinux-simple-${U.root}'`);
    const { text, changes } = fixGrubCfg(fine, t, '/boot/grub/grub.cfg');
    expect(text).toContain(`linux\t/vmlinuz-6.1.0-28-cloud-amd64 root=UUID=${U.root} ro console=ttyS0 net.ifnames=0 quiet`);
    expect(changes).toHaveLength(1);
    expect(fixGrubCfg(text, t, 'g')).toEqual({ text, changes: [] });
  });
});

describe('detectDistro', () => {
  const all = () => true;
  it('Debian 12 with initramfs-tools and GRUB; RHEL 8 with dracut and grub2', () => {
    expect(detectDistro(fixture('debian12/os-release'), all)).toMatchObject({ family: 'debian', initramfs: 'initramfs-tools', grub: 'grub', name: 'Debian GNU/Linux 12 (bookworm)' });
    expect(detectDistro(fixture('rhel8/os-release'), all)).toMatchObject({ family: 'rhel', initramfs: 'dracut', grub: 'grub2', grubCfg: '/boot/grub2/grub.cfg' });
  });

  it('refuses what it does not know, naming what it found', () => {
    expect(() => detectDistro('ID=alpine\nVERSION_ID=3.19\nPRETTY_NAME="Alpine Linux v3.19"\n', all)).toThrow(/Alpine Linux v3\.19 \(ID=alpine VERSION_ID=3\.19\)/);
    expect(() => detectDistro('ID="rhel"\nVERSION_ID="6.10"\n', all)).toThrow(/FERRY_CONFIGURE_UNSUPPORTED|releases 7 to 9/);
    expect(() => detectDistro(fixture('debian12/os-release'), (p) => p !== '/usr/sbin/update-initramfs')).toThrow(/initramfs-tools/);
    expect(() => detectDistro(undefined, (p) => p === '/etc/redhat-release')).toThrow(/no \/etc\/os-release \(found \/etc\/redhat-release\)/);
  });
});
