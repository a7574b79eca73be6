// The boot loader of the migrated system installed on its new boot disk and
// its configuration regenerated, with the system's own GRUB inside its
// chroot. The boot disk is the one holding the ESP, else /boot, else /.
// - i386-pc (an MBR disk, or GPT with a BIOS boot partition): grub-install
//   --target=i386-pc onto the boot disk's device.
// - x86_64-efi (an ESP): where the receiver can mount vfat (a real
//   intermediate instance), the ESP is mounted at /boot/efi in the chroot and
//   grub-install runs twice, --no-nvram and --removable (the new firmware has
//   no boot entry for the system: it boots EFI/BOOT/BOOTX64.EFI). Where it
//   cannot (this kernel has no vfat; grub-install refuses an efi-directory
//   that is not FAT), what grub-install does is done by hand: modules into
//   /boot/grub/x86_64-efi, grub-mkimage in the chroot with an early config
//   that finds /boot by UUID, the image written into the ESP with mtools
//   (EFI/BOOT/BOOTX64.EFI and EFI/ID/grubx64.efi). Without the target's
//   x86_64-efi modules, the system's own loader already on the ESP (it was
//   block-copied from the source) is copied with mtools to EFI/BOOT/. The
//   RHEL family boots through shim, whose package already puts
//   EFI/BOOT/BOOTX64.EFI there: grub2-install is not run for UEFI.
// - grub-mkconfig (grub2-mkconfig) with os-prober off into the file the
//   system boots from (the RHEL family under UEFI: the ESP's grub.cfg on
//   RHEL 7/8, /boot/grub2/grub.cfg behind the ESP's stub on RHEL 9 and
//   Fedora, whose UUID is pointed at the target: efi-grub-cfg.ts), then
//   grub-cfg.ts: no receiver-side device may be left in grub.cfg nor in
//   RHEL 8's grubenv kernelopts.
// Must not touch: any disk but the target's boot disk and ESP.

import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import type { Logger } from '../../platform/log.js';
import type { Layout, Partition } from '../../layout/model.js';
import type { Chroot } from './chroot.js';
import type { Distro } from './distro.js';
import { assertNoReceiverDevice, fixGrubCfg, fixReceiverRootResume, type GrubCfgTargets } from './grub-cfg.js';
import { efiConfigDir, efiGrubCfgKind, fixEfiStub, rewriteGrubenv } from './efi-grub-cfg.js';
import { mtool, openEsp } from './esp-files.js';
import { rewriteCmdline } from './kernel-cmdline.js';
import { addedKernelArgs } from './rewrite-files.js';
import type { TargetFiles } from './target-files.js';
import { volumeMountedAt, type DeviceResolver } from './target-volumes.js';
import { BIOS_BOOT_TYPE } from '../system/volumes.js';

export const ESP_TYPES = new Set(['C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'ef']);

export interface BootDisk {
  name: string;
  /** The receiver's device of the disk. */
  device: string;
  table: 'gpt' | 'dos';
  biosBoot: boolean;
  /** The ESP's receiver device, when the disk has one. */
  esp?: string;
}

const mountPointOf = (p: Partition) => (p.content.kind === 'filesystem' ? p.content.mountPoint : '');
/** Where the source mounts the partition's file system: whole, or (btrfs) any of its subvolumes. */
const mountsAt = (p: Partition, at: string) => mountPointOf(p) === at || (p.content.kind === 'filesystem' && p.content.subvolumes.some((s) => s.mountPoint === at));

/** The disk the target boots from (pure). */
export function bootDiskOf(made: Layout, devices: Map<string, string>, diskDevices: Map<string, string>): BootDisk | undefined {
  const isEsp = (p: Partition) => ESP_TYPES.has(p.type) || (p.content.kind === 'filesystem' && p.content.fsType === 'vfat' && mountPointOf(p) === '/boot/efi');
  const holds = (pred: (p: Partition) => boolean) => made.disks.find((d) => d.partitions.some(pred));
  const disk = holds(isEsp) ?? holds((p) => mountsAt(p, '/boot')) ?? holds((p) => mountsAt(p, '/')) ?? made.disks[0];
  if (!disk) return undefined;
  const esp = disk.partitions.find(isEsp);
  const device = diskDevices.get(disk.name);
  if (!device) return undefined;
  const espDevice = esp ? devices.get(esp.id) : undefined;
  return { name: disk.name, device, table: disk.table, biosBoot: disk.partitions.some((p) => p.type.toUpperCase() === BIOS_BOOT_TYPE), ...(espDevice ? { esp: espDevice } : {}) };
}


/** Files below `dir` on the receiver, relative to it. */
async function walk(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p, base)));
    else if (e.isFile()) out.push(relative(base, p));
  }
  return out;
}

/** Copies a directory tree into the FAT file system on `esp` (mmd for directories, mcopy -o for files). */
async function copyIntoEsp(esp: string, from: string): Promise<number> {
  const files = await walk(from);
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of [...dirs].sort()) await mtool('mmd', ['-D', 's', '-i', esp, `::/${d}`]).catch(() => undefined);
  for (const f of files) await mtool('mcopy', ['-o', '-i', esp, join(from, f), `::/${f}`]);
  return files.length;
}

/** The system's own loader already on the ESP copied to EFI/BOOT/ (BOOTX64.EFI: shim when there is one, else GRUB). */
async function removableFromEsp(esp: string, distro: Distro): Promise<string | undefined> {
  const listing = (await mtool('mdir', ['-b', '-/', '-i', esp, '::/EFI']).catch(() => ({ stdout: '' }))).stdout;
  const paths = listing.split('\n').map((l) => l.trim()).filter(Boolean);
  const dirOf = (p: string) => p.replace(/^::\/?/, '/').split('/').slice(0, -1).join('/');
  const loaders = paths.filter((p) => /\/EFI\/[^/]+\/(shimx64|grubx64)\.efi$/i.test(p) && !/\/EFI\/BOOT\//i.test(p));
  const prefer = loaders.find((p) => p.toLowerCase().includes(`/efi/${distro.id}/`)) ?? loaders[0];
  if (!prefer) return undefined;
  const dir = dirOf(prefer);
  const tmp = await mkdtemp(join(tmpdir(), 'ferry-esp-'));
  try {
    const inDir = paths.filter((p) => dirOf(p).toLowerCase() === dir.toLowerCase() && /\.(efi|cfg|csv)$/i.test(p));
    await mkdir(join(tmp, 'EFI', 'BOOT'), { recursive: true });
    for (const p of inDir) {
      const name = p.split('/').pop()!;
      const shim = loaders.some((l) => /shimx64\.efi$/i.test(l) && dirOf(l) === dir);
      const target = (shim ? /^shimx64\.efi$/i : /^grubx64\.efi$/i).test(name) ? 'BOOTX64.EFI' : name;
      await mtool('mcopy', ['-o', '-i', esp, `::${p.replace(/^::/, '')}`, join(tmp, 'EFI', 'BOOT', target)]);
    }
    await copyIntoEsp(esp, tmp);
    return `${dir.replace(/^\//, '')}`;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}


/** The file system holding /boot/grub: its UUID and the GRUB directory's path on it. */
export interface BootFs {
  uuid: string;
  /** As GRUB sees it on that file system: '/grub' on a /boot of its own, '/boot/grub' in /, '/@/boot/grub' in a btrfs root on subvolume '@'. */
  grubDir: string;
}

/**
 * The file system holding the GRUB directory (pure): /boot's when the source
 * mounts one, else /'s. GRUB reads btrfs from its top level, not from the
 * subvolume the system mounts, so a subvolume's path comes first.
 */
export function bootFsOf(r: DeviceResolver, distro: Pick<Distro, 'grub'>): BootFs {
  const dir = distro.grub === 'grub2' ? 'grub2' : 'grub';
  const under = (subvolume: string) => (subvolume ? `/${subvolume.replace(/^\/+|\/+$/g, '')}` : '');
  const boot = volumeMountedAt(r.volumes, '/boot');
  if (boot) return { uuid: boot.volume.uuid, grubDir: `${under(boot.subvolume)}/${dir}` };
  const root = volumeMountedAt(r.volumes, '/');
  return { uuid: root?.volume.uuid ?? '', grubDir: `${under(root?.subvolume ?? '')}/boot/${dir}` };
}

export async function installBootLoader(c: Chroot, files: TargetFiles, distro: Distro, disk: BootDisk, bootFs: BootFs, log: Logger): Promise<string[]> {
  const changes: string[] = [];
  const install = `${distro.grub}-install`;
  if (distro.platforms.includes('i386-pc') && (disk.table === 'dos' || disk.biosBoot)) {
    await c.run(install, ['--target=i386-pc', disk.device], { timeoutMs: 600_000 });
    changes.push(`GRUB (i386-pc) installed on disk ${disk.name}`);
  }
  if (!disk.esp) return changes;
  if (distro.family === 'rhel') {
    changes.push('UEFI: the ESP keeps the system\'s own shim and GRUB (copied from the source); grub2-install is not run on the RHEL family');
    return changes;
  }
  if (!distro.platforms.includes('x86_64-efi')) {
    const from = await removableFromEsp(disk.esp, distro);
    if (from) changes.push(`UEFI: ${from} on the ESP copied to the removable path EFI/BOOT (BOOTX64.EFI)`);
    return changes;
  }
  const efiArgs = (dir: string) => ['--target=x86_64-efi', `--efi-directory=${dir}`, `--bootloader-id=${distro.id || 'debian'}`, '--no-nvram'];
  let mounted = false;
  try {
    await c.mount(['-t', 'vfat', disk.esp], '/boot/efi');
    mounted = true;
  } catch (e) {
    log.info({ err: errorMessage(e) }, 'the ESP cannot be mounted here (no vfat): written with mtools');
  }
  if (mounted) {
    await c.run(install, efiArgs('/boot/efi'), { timeoutMs: 600_000 });
    await c.run(install, [...efiArgs('/boot/efi'), '--removable'], { timeoutMs: 600_000 });
    changes.push(`GRUB (x86_64-efi) installed into the ESP, also at the removable path EFI/BOOT`);
    return changes;
  }
  try {
    await efiImageByHand(c, files, distro, disk.esp, bootFs);
    changes.push(`GRUB (x86_64-efi) core image made with grub-mkimage (finding /boot by UUID ${bootFs.uuid}) and written with mtools to EFI/BOOT/BOOTX64.EFI and EFI/${distro.id}/grubx64.efi`);
  } catch (e) {
    log.info({ err: errorMessage(e) }, 'making the GRUB EFI image failed: the loader already on the ESP is copied to the removable path');
    const from = await removableFromEsp(disk.esp, distro);
    if (!from) throw e;
    changes.push(`UEFI: ${from} on the ESP copied to the removable path EFI/BOOT (BOOTX64.EFI) with mtools`);
  }
  return changes;
}

/** GRUB's EFI modules every target needs to find and read /boot and start Linux. */
const EFI_MODULES = ['part_gpt', 'part_msdos', 'ext2', 'xfs', 'btrfs', 'fat', 'normal', 'linux', 'boot', 'configfile', 'echo', 'search', 'search_fs_uuid', 'search_fs_file', 'search_label', 'serial', 'terminal', 'efi_gop', 'all_video', 'gzio', 'test'];

/** The early config built into the core image: /boot's file system by UUID, the GRUB directory on it as the prefix (pure). */
export function efiEarlyConfig(bootFs: BootFs): string {
  return `search.fs_uuid ${bootFs.uuid} root\nset prefix=($root)${bootFs.grubDir}\n`;
}

/** grub-mkimage's arguments for the core image (pure): `-p` is the prefix used when the early config's search fails. */
export function efiMkimageArgs(bootFs: BootFs, early: string, image: string): string[] {
  return ['-O', 'x86_64-efi', '-o', image, '-c', early, '-p', bootFs.grubDir, ...EFI_MODULES];
}

/**
 * What grub-install --target=x86_64-efi does, by hand, where the ESP cannot
 * be mounted (grub-install wants it mounted and FAT): the modules copied to
 * /boot/grub/x86_64-efi, a core image made in the chroot with an early
 * config that finds /boot by its UUID (not by a disk number the new machine
 * may not share), written into the ESP with mtools at the removable path and
 * at EFI/ID/.
 */
async function efiImageByHand(c: Chroot, files: TargetFiles, distro: Distro, esp: string, bootFs: { uuid: string; grubDir: string }): Promise<void> {
  await c.run('/bin/sh', ['-c', 'mkdir -p /boot/grub/x86_64-efi && cp /usr/lib/grub/x86_64-efi/*.mod /usr/lib/grub/x86_64-efi/*.lst /boot/grub/x86_64-efi/']);
  const early = '/tmp/ferry-grub-early.cfg';
  const image = '/tmp/ferry-grubx64.efi';
  await files.create(early, efiEarlyConfig(bootFs));
  try {
    await c.run(`${distro.grub}-mkimage`, efiMkimageArgs(bootFs, early, image));
    const made = await files.resolve(image);
    if (!made) throw new Error(`${distro.grub}-mkimage wrote no ${image}`);
    for (const d of ['::/EFI', '::/EFI/BOOT', `::/EFI/${distro.id}`]) await mtool('mmd', ['-D', 's', '-i', esp, d]).catch(() => undefined);
    await mtool('mcopy', ['-o', '-i', esp, made, '::/EFI/BOOT/BOOTX64.EFI']);
    await mtool('mcopy', ['-o', '-i', esp, made, `::/EFI/${distro.id}/grubx64.efi`]);
  } finally {
    for (const f of [early, image]) {
      const at = await files.resolve(f);
      if (at) await rm(at, { force: true });
    }
  }
}

export interface GrubCfgInput {
  resolver: DeviceResolver;
  /** Every receiver device of the target disks and partitions. */
  receiverDevices: string[];
  /** The ESP's receiver device, for a UEFI target. */
  esp?: string;
}

/** What a generated grub.cfg's receiver-side root=/resume= become (pure): the target's / (whole or a btrfs subvolume) and its only swap. */
export function grubCfgTargets(i: GrubCfgInput): GrubCfgTargets {
  const root = volumeMountedAt(i.resolver.volumes, '/')?.volume;
  const swaps = i.resolver.volumes.filter((v) => v.kind === 'swap');
  return { rootUuid: root?.uuid ?? '', ...(swaps.length === 1 ? { swapUuid: swaps[0]!.uuid } : {}), receiverDevices: i.receiverDevices };
}

/**
 * RHEL 8's kernelopts (grubenv) as the target needs them (pure): what
 * grub2-mkconfig wrote there names the root by the device it saw without
 * udev (a receiver loop device), the source's kernelopts name the source's
 * devices; both become UUID=, and configure's kernel arguments are added.
 */
export function targetKernelopts(kernelopts: string, i: GrubCfgInput, distro: Distro): { cmdline: string; changes: string[] } {
  const t = grubCfgTargets(i);
  const mended = fixReceiverRootResume(kernelopts, t);
  const r = rewriteCmdline(mended.cmdline, i.resolver, { add: addedKernelArgs(distro) });
  const changes = [...(mended.count > 0 ? [`${mended.count} root=/resume= device path(s) of the receiver → UUID=`] : []), ...r.changes];
  assertNoReceiverDevice(r.cmdline, t, 'kernelopts');
  return { cmdline: r.cmdline, changes };
}

/**
 * grub-mkconfig (grub2-mkconfig) in the chroot into the file the system
 * boots from, then checked and mended (grub-cfg.ts). That file is
 * distro.grubCfg, except for the RHEL family under UEFI (efi-grub-cfg.ts):
 * on RHEL 7/8 the ESP's EFI/<dir>/grub.cfg itself (written there, or made
 * in the chroot and copied with mtools), on RHEL 9 / Fedora the ESP's stub
 * is pointed at the target's /boot and /boot/grub2/grub.cfg is generated.
 * RHEL 8's kernelopts (grubenv) are rewritten after grub2-mkconfig, which
 * sets them.
 */
export async function regenerateGrubCfg(c: Chroot, files: TargetFiles, distro: Distro, i: GrubCfgInput, log: Logger): Promise<string[]> {
  const changes: string[] = [];
  const env = { GRUB_DISABLE_OS_PROBER: 'true' };
  const targets = grubCfgTargets(i);
  /** grub-mkconfig -o `out` (a path in the chroot), then the file mended; returns its mended text. */
  const mkconfig = async (out: string, shown: string): Promise<string | undefined> => {
    await c.run(`${distro.grub}-mkconfig`, ['-o', out], { env, timeoutMs: 600_000 });
    changes.push(`${shown} regenerated (${distro.grub}-mkconfig)`);
    const text = await files.read(out);
    if (text === undefined) return undefined;
    const fixed = fixGrubCfg(text, targets, shown);
    if (fixed.text !== text) await files.write(out, fixed.text);
    changes.push(...fixed.changes);
    return fixed.text;
  };
  const grubenv = async (read: () => Promise<string | undefined>, write: (t: string) => Promise<void>, shown: string) => {
    const text = await read();
    if (text === undefined) return;
    const r = rewriteGrubenv(text, (k) => targetKernelopts(k, i, distro), shown);
    if (r.text !== text) await write(r.text);
    changes.push(...r.changes);
  };

  if (distro.family === 'rhel' && i.esp) {
    const esp = await openEsp(c, files, i.esp, log);
    const dir = efiConfigDir(distro.id, await esp.configDirs());
    const cfg = dir ? `EFI/${dir}/grub.cfg` : undefined;
    const text = cfg ? await esp.read(cfg) : undefined;
    if (cfg && dir && text !== undefined && efiGrubCfgKind(text) === 'full') {
      // RHEL 7/8: GRUB on the ESP reads this file and nothing else.
      const shown = `/boot/efi/${cfg}`;
      if (esp.mountedAt) {
        await mkconfig(shown, shown);
      } else {
        const tmp = '/tmp/ferry-grub.cfg';
        try {
          const made = await mkconfig(tmp, shown);
          if (made === undefined) throw new FerryError('FERRY_CONFIGURE_FAILED', `${distro.grub}-mkconfig wrote no ${tmp} in the migrated system`);
          await esp.write(cfg, made);
        } finally {
          const at = await files.resolve(tmp);
          if (at) await rm(at, { force: true });
        }
      }
      await grubenv(() => esp.read(`EFI/${dir}/grubenv`), (t) => esp.write(`EFI/${dir}/grubenv`, t), `/boot/efi/EFI/${dir}/grubenv`);
      // A hybrid image also boots with BIOS from /boot/grub2/grub.cfg: kept current when it has one.
      if (await files.exists(distro.grubCfg)) await mkconfig(distro.grubCfg, distro.grubCfg);
      return changes;
    }
    if (cfg && text !== undefined) {
      const fixed = fixEfiStub(text, bootFsOf(i.resolver, distro), `/boot/efi/${cfg}`);
      if (fixed.text !== text) await esp.write(cfg, fixed.text);
      changes.push(...fixed.changes);
    } else {
      changes.push(`UEFI: the ESP has no EFI/<dir>/grub.cfg of ${distro.id || 'the system'} (${dir ? 'none' : 'none or several'} found): ${distro.grubCfg} is written`);
    }
  }
  await mkconfig(distro.grubCfg, distro.grubCfg);
  if (distro.family === 'rhel') {
    const envFile = distro.grubCfg.replace(/grub\.cfg$/, 'grubenv');
    await grubenv(() => files.read(envFile), (t) => files.write(envFile, t), envFile);
  }
  return changes;
}
