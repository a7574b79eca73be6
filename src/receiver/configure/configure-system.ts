// Configuring a migrated system for its new hardware, start to end, on its
// tree mounted at `root`: which distribution it is (distro.ts; an unknown one
// is refused before anything changes), its configuration files rewritten
// (rewrite-files.ts), then inside its chroot (chroot.ts) the initramfs of
// every kernel rebuilt with the new hardware's drivers (initramfs.ts), GRUB
// installed on the boot disk and grub.cfg regenerated and checked
// (boot-loader.ts). Every change is appended to /var/log/ferry-configure.log
// on the target, also when a step fails (with the failure). Idempotent: a
// second run rewrites nothing and reinstalls the same boot loader and
// initramfs.
// Must not touch: the receiver's own system (tools run in the chroot only),
// any disk but the target's.

import { realpath } from 'node:fs/promises';
import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import { exec } from '../../platform/exec.js';
import type { Logger } from '../../platform/log.js';
import type { Layout } from '../../layout/model.js';
import { bootDiskOf, bootFsOf, installBootLoader, regenerateGrubCfg } from './boot-loader.js';
import { withChroot } from './chroot.js';
import { detectDistro, type Distro } from './distro.js';
import { rebuildInitramfs } from './initramfs.js';
import { rewriteFiles } from './rewrite-files.js';
import { TargetFiles } from './target-files.js';
import { DeviceResolver, targetVolumes } from './target-volumes.js';

export const CONFIGURE_LOG = '/var/log/ferry-configure.log';

export interface ConfigureInput {
  /** The target tree, mounted in mount order. */
  root: string;
  /** The layout the agent asked for (the source's names of things). */
  requested: Layout;
  /** The layout as made (LVs flattened, UUIDs the receiver had to change). */
  made: Layout;
  /** Volume id → receiver device. */
  devices: Map<string, string>;
  /** Disk name → receiver device. */
  diskDevices: Map<string, string>;
  keepStaticNetwork: boolean;
  log: Logger;
}

export interface ConfigureResult {
  distro: string;
  changes: string[];
  /** The log's path on the target. */
  log: string;
}

/** Paths whose existence distro detection asks about. */
const PROBED = [
  '/etc/redhat-release',
  '/etc/debian_version',
  '/etc/SuSE-release',
  '/usr/lib/grub/i386-pc',
  '/usr/lib/grub/x86_64-efi',
  '/usr/sbin/update-initramfs',
  '/usr/sbin/grub-install',
  '/usr/sbin/grub-mkconfig',
  '/usr/bin/dracut',
  '/usr/sbin/dracut',
  '/usr/sbin/grub2-mkconfig',
];

export async function identify(files: TargetFiles): Promise<Distro> {
  const present = new Set<string>();
  for (const p of PROBED) if (await files.exists(p)) present.add(p);
  const osRelease = (await files.read('/etc/os-release')) ?? (await files.read('/usr/lib/os-release'));
  return detectDistro(osRelease, (p) => present.has(p));
}

export async function configureSystem(i: ConfigureInput): Promise<ConfigureResult> {
  const root = await realpath(i.root);
  const files = new TargetFiles(root);
  const distro = await identify(files);
  const resolver = new DeviceResolver(targetVolumes(i.requested, i.made));
  const disk = bootDiskOf(i.made, i.devices, i.diskDevices);
  const receiverDevices = [...i.diskDevices.values(), ...i.devices.values()];
  const changes: string[] = [];
  let failure: unknown;
  try {
    changes.push(...(await rewriteFiles(files, distro, resolver, { keepStaticNetwork: i.keepStaticNetwork })));
    await withChroot(root, { efivars: disk?.esp !== undefined }, i.log, async (c) => {
      changes.push(...(await rebuildInitramfs(c, files, distro)));
      if (disk) changes.push(...(await installBootLoader(c, files, distro, disk, bootFsOf(resolver, distro), i.log)));
      else changes.push('no boot disk in the layout: no boot loader installed');
      changes.push(...(await regenerateGrubCfg(c, files, distro, { resolver, receiverDevices, ...(disk?.esp ? { esp: disk.esp } : {}) }, i.log)));
    });
  } catch (e) {
    failure = e;
  } finally {
    const stamp = new Date().toISOString();
    const lines = [`# ${stamp} ferry configure: ${distro.name}`, ...changes, ...(failure ? [`FAILED: ${errorMessage(failure)}`] : [])];
    await files.append(CONFIGURE_LOG, `${lines.join('\n')}\n`).catch((e: unknown) => i.log.warn({ err: errorMessage(e) }, `writing ${CONFIGURE_LOG} on the target failed`));
    await exec('sync', ['-f', root], { timeoutMs: 600_000 }).catch(() => undefined);
  }
  if (failure) {
    throw failure instanceof FerryError && failure.code.startsWith('FERRY_CONFIGURE_')
      ? failure
      : new FerryError('FERRY_CONFIGURE_FAILED', `configuring ${distro.name} failed: ${errorMessage(failure)}`, { cause: failure });
  }
  i.log.info({ distro: distro.name, changes: changes.length }, 'migrated system configured');
  return { distro: distro.name, changes, log: CONFIGURE_LOG };
}
