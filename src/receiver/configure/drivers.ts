// The drivers the target's initramfs must carry for its new hardware (pure):
// virtio (KVM and most clouds), nvme (EBS and local NVMe), and where the
// kernel ships them ena (AWS), xen-blkfront (Xen) and hv_storvsc/hv_netvsc
// (Hyper-V, Azure). Which of them a kernel ships is read from its
// modules.dep and modules.builtin (built-in drivers need no listing); a
// driver is listed only when every installed kernel has it, since dracut
// fails on a driver it cannot find. The lists go where each initramfs tool
// takes them: /etc/initramfs-tools/modules (one name a line) and a dracut
// conf.d file (add_drivers+=).
// Must not touch: anything but the text it is given.

export const TARGET_DRIVERS = ['virtio_blk', 'virtio_scsi', 'virtio_net', 'virtio_pci', 'nvme', 'ena', 'xen-blkfront', 'hv_storvsc', 'hv_netvsc'] as const;

/** Module names are the same with '-' or '_'. */
const norm = (n: string) => n.replace(/-/g, '_');

/** The module names a kernel's modules.dep lists as loadable, and those modules.builtin lists as built in. */
export function kernelModules(modulesDep: string, modulesBuiltin: string): { loadable: Set<string>; builtin: Set<string> } {
  const names = (text: string, re: RegExp) => new Set([...text.matchAll(re)].map((m) => norm(m[1]!)));
  return { loadable: names(modulesDep, /(?:^|\/)([^/\s:]+)\.ko(?:\.[a-z]+)?:/gm), builtin: names(modulesBuiltin, /(?:^|\/)([^/\s]+)\.ko\s*$/gm) };
}

/** The target drivers to list: loadable in every kernel (built-in ones need nothing). */
export function driversToList(kernels: Array<{ loadable: Set<string>; builtin: Set<string> }>): string[] {
  if (kernels.length === 0) return [];
  return TARGET_DRIVERS.filter((d) => kernels.every((k) => k.loadable.has(norm(d))) );
}

/** /etc/initramfs-tools/modules with the drivers it lacks appended (with a comment saying why). */
export function addInitramfsModules(text: string, drivers: string[]): { text: string; added: string[] } {
  const have = new Set(text.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter((w) => w && !w.startsWith('#')).map(norm));
  const added = drivers.filter((d) => !have.has(norm(d)));
  if (added.length === 0) return { text, added };
  const body = text === '' || text.endsWith('\n') ? text : `${text}\n`;
  return { text: `${body}# ferry: drivers of the migrated server's new hardware\n${added.join('\n')}\n`, added };
}

export const DRACUT_CONF = '/etc/dracut.conf.d/90-ferry-drivers.conf';

export function dracutConf(drivers: string[]): string {
  return `# ferry: drivers of the migrated server's new hardware (virtio, nvme, cloud NICs and disks)\nadd_drivers+=" ${drivers.join(' ')} "\n`;
}
