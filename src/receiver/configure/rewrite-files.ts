// The configuration files of the migrated system rewritten for its new
// disks and NIC (each rewrite is a pure transform in its own file; this one
// finds the files in the target tree, applies them and writes back only what
// changed): fstab, crypttab, the resume device, /etc/default/grub, BLS
// entries and /etc/kernel/cmdline, udev persistent-net rules, ifupdown, ifcfg, NetworkManager and
// netplan. Running it again on its own result changes nothing.
// Must not touch: files outside the target tree (TargetFiles refuses them).

import type { Distro } from './distro.js';
import { rewriteCrypttab, rewriteFstab, rewriteResumeConf } from './fstab.js';
import { rewriteBlsEntry, rewriteDefaultGrub, rewriteKernelCmdlineFile } from './kernel-cmdline.js';
import { ifcfgDevice, rewriteIfcfg } from './network-ifcfg.js';
import { rewriteInterfaces } from './network-ifupdown.js';
import { nmHasGateway, rewriteNmProfile } from './network-manager.js';
import { PRIMARY_NIC, isPhysicalNic } from './network-names.js';
import { rewriteNetplan } from './network-netplan.js';
import { removeMacRules } from './network-udev.js';
import type { TargetFiles } from './target-files.js';
import type { DeviceResolver } from './target-volumes.js';

export interface RewriteOptions {
  keepStaticNetwork: boolean;
}

/** The kernel arguments configure adds (kernel-cmdline.ts says why). */
export function addedKernelArgs(d: Distro): string[] {
  return d.family === 'rhel' ? ['net.ifnames=0', 'biosdevname=0'] : ['net.ifnames=0'];
}

export async function rewriteFiles(files: TargetFiles, distro: Distro, resolver: DeviceResolver, o: RewriteOptions): Promise<string[]> {
  const changes: string[] = [];
  const apply = async (path: string, fn: (text: string) => { text: string; changes: string[] }) => {
    const text = await files.read(path);
    if (text === undefined) return;
    const r = fn(text);
    if (r.text !== text) await files.write(path, r.text);
    changes.push(...r.changes);
  };
  const add = addedKernelArgs(distro);

  await apply('/etc/fstab', (t) => rewriteFstab(t, resolver));
  await apply('/etc/crypttab', (t) => rewriteCrypttab(t, resolver));
  for (const f of await files.list('/etc/initramfs-tools/conf.d')) await apply(`/etc/initramfs-tools/conf.d/${f}`, (t) => rewriteResumeConf(t, resolver, `/etc/initramfs-tools/conf.d/${f}`));
  await apply('/etc/default/grub', (t) => rewriteDefaultGrub(t, resolver, { add }));
  for (const f of (await files.list('/boot/loader/entries')).filter((n) => n.endsWith('.conf'))) {
    await apply(`/boot/loader/entries/${f}`, (t) => rewriteBlsEntry(t, resolver, { add }, `/boot/loader/entries/${f}`));
  }
  await apply('/etc/kernel/cmdline', (t) => rewriteKernelCmdlineFile(t, resolver, { add }));

  // Network.
  for (const dir of ['/etc/udev/rules.d', '/lib/udev/rules.d']) {
    for (const f of (await files.list(dir)).filter((n) => /persistent-net.*\.rules$/.test(n))) await apply(`${dir}/${f}`, (t) => removeMacRules(t, `${dir}/${f}`));
  }
  await apply('/etc/network/interfaces', (t) => rewriteInterfaces(t, o));
  for (const f of await files.list('/etc/network/interfaces.d')) await apply(`/etc/network/interfaces.d/${f}`, (t) => rewriteInterfaces(t, o, `/etc/network/interfaces.d/${f}`));

  const scripts = '/etc/sysconfig/network-scripts';
  const ifcfgs: Array<{ name: string; device: string; gateway: boolean }> = [];
  for (const f of (await files.list(scripts)).filter((n) => /^ifcfg-/.test(n) && n !== 'ifcfg-lo')) {
    const t = (await files.read(`${scripts}/${f}`)) ?? '';
    // A GATEWAY= line configure commented out counts: a second run must pick the same primary.
    ifcfgs.push({ name: f, device: ifcfgDevice(t) || f.slice('ifcfg-'.length), gateway: /^(#ferry# )?\s*GATEWAY=/m.test(t) });
  }
  const nics = ifcfgs.filter((x) => isPhysicalNic(x.device));
  const primary = nics.find((x) => x.gateway) ?? nics[0];
  for (const x of ifcfgs) {
    await apply(`${scripts}/${x.name}`, (t) => rewriteIfcfg(t, { ...o, primary: x === primary }, `${scripts}/${x.name}`));
    if (x === primary && x.name !== `ifcfg-${PRIMARY_NIC}` && !ifcfgs.some((y) => y.name === `ifcfg-${PRIMARY_NIC}`)) {
      await files.rename(scripts, x.name, `ifcfg-${PRIMARY_NIC}`);
      changes.push(`${scripts}/${x.name} renamed ifcfg-${PRIMARY_NIC}`);
    }
  }

  const nm = '/etc/NetworkManager/system-connections';
  const profiles = await files.list(nm);
  // The primary profile: the Ethernet one with a gateway, else the first Ethernet one.
  const ethernet: Array<{ name: string; gateway: boolean }> = [];
  for (const f of profiles) {
    const t = (await files.read(`${nm}/${f}`)) ?? '';
    if (/^\s*type\s*=\s*(ethernet|802-3-ethernet)\s*$/m.test(t)) ethernet.push({ name: f, gateway: nmHasGateway(t) });
  }
  const nmPrimary = (ethernet.find((x) => x.gateway) ?? ethernet[0])?.name;
  for (const f of profiles) await apply(`${nm}/${f}`, (t) => rewriteNmProfile(t, { ...o, primary: f === nmPrimary }, `${nm}/${f}`));

  for (const f of (await files.list('/etc/netplan')).filter((n) => /\.ya?ml$/.test(n))) await apply(`/etc/netplan/${f}`, (t) => rewriteNetplan(t, o, `/etc/netplan/${f}`));
  return changes;
}
