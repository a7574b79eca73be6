// Facts about the Linux host from what the kernel and the distribution
// publish: /etc/os-release, DMI strings (cloud platform), boot-loader files,
// /proc/diskstats (average read wait).

export { detectPlatform } from '../platform-detect.js';

export { parseOsRelease } from '../../platform/os-release.js';

const BITS: Record<string, string> = { x86_64: '64BIT', aarch64: '64BIT', arm64: '64BIT', ppc64le: '64BIT', s390x: '64BIT', i386: '32BIT', i686: '32BIT', ia32: '32BIT' };

/**
 * The SMS spelling of the OS version: distribution ID, version with dots as
 * underscores, word size — DEBIAN12_64BIT, UBUNTU22_04_64BIT, CENTOS7_64BIT;
 * SUSE service packs as in the API example (SUSE12_64BIT_SP2).
 */
export function osVersionName(osRelease: Record<string, string>, arch: string): string {
  const id = (osRelease.ID ?? 'linux').toUpperCase().replace(/[^A-Z0-9]/g, '');
  const version = osRelease.VERSION_ID ?? '';
  const bits = BITS[arch] ?? '64BIT';
  if (id === 'SLES' || id === 'SLED' || id === 'SUSE') {
    const [major, sp] = version.split('.');
    return `SUSE${major ?? ''}_${bits}${sp && sp !== '0' ? `_SP${sp}` : ''}`;
  }
  return `${id}${version.replace(/\./g, '_')}_${bits}`;
}

/** The `linux_block_check` string, shaped as in the API example. */
export function linuxBlockCheck(osRelease: Record<string, string>, kernelRelease: string, arch: string): string {
  return JSON.stringify({
    release_type: (osRelease.ID ?? '').toUpperCase(),
    release_version: osRelease.VERSION_ID ?? '',
    kernel_simplification: /^\d+\.\d+(\.\d+)?/.exec(kernelRelease)?.[0] ?? kernelRelease,
    architecture: arch,
    kernel_version: kernelRelease,
  });
}

/**
 * Virtualization type: HVM for a hardware-virtualized guest, PV for a Xen
 * paravirtual guest (no emulated hardware, hence no DMI), PHYSICAL otherwise.
 */
export function virtualizationType(hypervisorType: string, cpuHypervisorFlag: boolean, dmi: Record<string, string>): string {
  if (hypervisorType === 'xen' && !cpuHypervisorFlag && Object.keys(dmi).length === 0) return 'PV';
  if (cpuHypervisorFlag || hypervisorType !== '') return 'HVM';
  const vendor = `${dmi.sys_vendor ?? ''} ${dmi.product_name ?? ''}`.toLowerCase();
  if (/qemu|kvm|vmware|virtualbox|xen|bochs|virtual machine|openstack|amazon ec2|google compute|alibaba/.test(vendor)) return 'HVM';
  return 'PHYSICAL';
}

export const BOOT_LOADER_FILES = [
  '/boot/grub',
  '/boot/grub2',
  '/etc/default/grub',
  '/boot/efi/EFI',
  '/boot/grub/grub.cfg',
  '/boot/grub2/grub.cfg',
  '/etc/lilo.conf',
  '/sbin/lilo',
] as const;

export function detectBootLoader(existing: readonly string[]): 'GRUB' | 'LILO' | undefined {
  const has = (p: string) => existing.includes(p);
  if (has('/boot/grub') || has('/boot/grub2') || has('/etc/default/grub') || has('/boot/grub/grub.cfg') || has('/boot/grub2/grub.cfg')) return 'GRUB';
  if (has('/etc/lilo.conf') || has('/sbin/lilo')) return 'LILO';
  return undefined;
}

/**
 * Average read latency since boot over the given disks, in milliseconds per
 * read (the `r_await` of iostat), from /proc/diskstats: field 4 reads
 * completed, field 7 milliseconds spent reading. The API calls the unit
 * "minute", but its example (3.4) is a millisecond figure; see docs.
 */
export function averageReadWaitMs(diskstats: string, disks: readonly string[]): number {
  let reads = 0;
  let ms = 0;
  for (const line of diskstats.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7 || !disks.includes(f[2]!)) continue;
    reads += Number(f[3]) || 0;
    ms += Number(f[6]) || 0;
  }
  if (reads === 0) return 0;
  return Math.min(10_000, Math.round((ms / reads) * 100) / 100);
}
