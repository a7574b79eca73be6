// Which system the target holds and which of its own tools configure uses
// (pure, given /etc/os-release and a way to ask whether a path exists in the
// target tree): the Debian family (ID or ID_LIKE debian/ubuntu) with
// initramfs-tools and grub-pc/grub-efi, the RHEL family 7 to 9 (ID or
// ID_LIKE rhel/centos/fedora, VERSION_ID 7–9) with dracut and grub2.
// Anything else fails CONFIGURE (FERRY_CONFIGURE_UNSUPPORTED) naming what was
// found, before anything is changed.
// Must not touch: the target (the caller reads it).

import { FerryError } from '../../errors/ferry-error.js';
import { parseOsRelease } from '../../platform/os-release.js';

export interface Distro {
  family: 'debian' | 'rhel';
  /** PRETTY_NAME (or ID VERSION_ID) for messages and the reply. */
  name: string;
  id: string;
  version: string;
  initramfs: 'initramfs-tools' | 'dracut';
  /** The GRUB program prefix: grub-install/grub-mkconfig (Debian), grub2-install/grub2-mkconfig (RHEL). */
  grub: 'grub' | 'grub2';
  /** GRUB platforms whose modules the target has installed (/usr/lib/grub/PLATFORM). */
  platforms: Array<'i386-pc' | 'x86_64-efi'>;
  /** Where grub.cfg is written. */
  grubCfg: string;
}


/** `osRelease` is undefined when the target has no /etc/os-release (nor /usr/lib/os-release). */
export function detectDistro(osRelease: string | undefined, exists: (path: string) => boolean): Distro {
  if (osRelease === undefined) {
    const hints = ['/etc/redhat-release', '/etc/debian_version', '/etc/SuSE-release'].filter(exists);
    throw new FerryError('FERRY_CONFIGURE_UNSUPPORTED', `the migrated system has no /etc/os-release${hints.length ? ` (found ${hints.join(', ')})` : ''}: configure knows the Debian family and RHEL 7 to 9 by it; nothing was changed`);
  }
  const r = parseOsRelease(osRelease);
  const id = (r.ID ?? '').toLowerCase();
  const like = (r.ID_LIKE ?? '').toLowerCase().split(/\s+/);
  const version = r.VERSION_ID ?? '';
  const name = r.PRETTY_NAME || `${id} ${version}`.trim() || 'an unnamed system';
  const is = (...names: string[]) => names.includes(id) || like.some((l) => names.includes(l));
  const platforms = (['i386-pc', 'x86_64-efi'] as const).filter((p) => exists(`/usr/lib/grub/${p}`));
  const refuse = (why: string) => new FerryError('FERRY_CONFIGURE_UNSUPPORTED', `the migrated system is ${name} (ID=${id || '?'}${r.ID_LIKE ? ` ID_LIKE="${r.ID_LIKE}"` : ''} VERSION_ID=${version || '?'}): ${why}; nothing was changed`);

  if (is('debian', 'ubuntu')) {
    if (!exists('/usr/sbin/update-initramfs')) throw refuse('initramfs-tools (update-initramfs) is not installed in it');
    if (!exists('/usr/sbin/grub-install') && !exists('/usr/sbin/grub-mkconfig')) throw refuse('GRUB 2 (grub-pc or grub-efi) is not installed in it');
    return { family: 'debian', name, id, version, initramfs: 'initramfs-tools', grub: 'grub', platforms: [...platforms], grubCfg: '/boot/grub/grub.cfg' };
  }
  if (is('rhel', 'centos', 'fedora')) {
    const major = Number(/^(\d+)/.exec(version)?.[1] ?? NaN);
    if (!(major >= 7 && major <= 9) && !(id === 'amzn' && major === 2)) throw refuse('configure knows RHEL-family releases 7 to 9');
    if (!exists('/usr/bin/dracut') && !exists('/usr/sbin/dracut')) throw refuse('dracut is not installed in it');
    if (!exists('/usr/sbin/grub2-mkconfig')) throw refuse('grub2 (grub2-mkconfig) is not installed in it');
    return { family: 'rhel', name, id, version, initramfs: 'dracut', grub: 'grub2', platforms: [...platforms], grubCfg: '/boot/grub2/grub.cfg' };
  }
  throw refuse('configure knows the Debian family (initramfs-tools, GRUB 2) and the RHEL family 7 to 9 (dracut, grub2)');
}
