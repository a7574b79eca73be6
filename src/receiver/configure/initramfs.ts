// Rebuilding the initramfs of every installed kernel of the migrated system
// with the drivers of its new hardware (drivers.ts), with the system's own
// tool inside its chroot: initramfs-tools (the drivers listed in
// /etc/initramfs-tools/modules; update-initramfs -u -k all) or dracut (a
// conf.d file with add_drivers; dracut -f -N --regenerate-all: -N, no
// host-only image, because "the host" inside the chroot is the receiver's
// hardware, not the target's). Returns the changes, one line each.
// Must not touch: the receiver's own initramfs (tools run in the chroot only).

import type { Chroot } from './chroot.js';
import type { Distro } from './distro.js';
import { DRACUT_CONF, addInitramfsModules, dracutConf, driversToList, kernelModules } from './drivers.js';
import type { TargetFiles } from './target-files.js';

const LONG = 1_800_000;

export async function rebuildInitramfs(c: Chroot, files: TargetFiles, distro: Distro): Promise<string[]> {
  const kernels: string[] = [];
  const shipped = [];
  for (const k of await files.list('/lib/modules')) {
    const dep = await files.read(`/lib/modules/${k}/modules.dep`);
    if (dep === undefined) continue;
    kernels.push(k);
    shipped.push(kernelModules(dep, (await files.read(`/lib/modules/${k}/modules.builtin`)) ?? ''));
  }
  if (kernels.length === 0) return ['no kernel with modules in /lib/modules: initramfs not rebuilt'];
  const drivers = driversToList(shipped);
  const changes: string[] = [];
  if (distro.initramfs === 'initramfs-tools') {
    const path = '/etc/initramfs-tools/modules';
    const before = (await files.read(path)) ?? '';
    const r = addInitramfsModules(before, drivers);
    if (r.added.length > 0) {
      await files.create(path, r.text);
      changes.push(`${path}: ${r.added.join(' ')} added`);
    }
    await c.run('update-initramfs', ['-u', '-k', 'all'], { timeoutMs: LONG });
  } else {
    const text = dracutConf(drivers);
    if ((await files.read(DRACUT_CONF)) !== text) {
      await files.create(DRACUT_CONF, text);
      changes.push(`${DRACUT_CONF}: add_drivers ${drivers.join(' ')}`);
    }
    await c.run('dracut', ['-f', '-N', '--regenerate-all'], { timeoutMs: LONG });
  }
  changes.push(`initramfs rebuilt for ${kernels.join(', ')} (${distro.initramfs}) with ${drivers.length ? drivers.join(' ') : 'no extra driver (the kernels build them in)'}`);
  return changes;
}
