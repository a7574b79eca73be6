// The GRUB configuration a RHEL-family system boots from under UEFI (pure).
// Its shim and GRUB on the ESP read EFI/<dir>/grub.cfg beside them (redhat
// on RHEL and Oracle Linux, centos, rocky, almalinux, fedora). On RHEL 7/8
// that file IS the configuration (grub2-mkconfig must write there, not to
// /boot/grub2/grub.cfg, which that GRUB never reads); on RHEL 9 and Fedora
// 34+ it is a stub that finds /boot (or /) by UUID and loads
// /boot/grub2/grub.cfg:
//     search --no-floppy [--root-dev-only] --fs-uuid --set=dev UUID
//     set prefix=($dev)/grub2
//     export $prefix
//     configfile $prefix/grub.cfg
// The stub's UUID and prefix must name the TARGET's file system holding the
// GRUB directory, and grub2-mkconfig then writes /boot/grub2/grub.cfg.
// RHEL 8 keeps `kernelopts` in the grubenv beside the ESP's grub.cfg
// (/boot/grub2/grubenv links to it); the environment block is rewritten here
// too, at its own size.
// Must not touch: anything but the text it is given.

import { FerryError } from '../../errors/ferry-error.js';

/** EFI/<dir> of each RHEL-family ID (os-release ID → the directory its shim package installs to). */
const EFI_DIR_OF: Record<string, string> = { rhel: 'redhat', ol: 'redhat', centos: 'centos', rocky: 'rocky', almalinux: 'almalinux', fedora: 'fedora', amzn: 'amzn', eurolinux: 'eurolinux' };

/**
 * Which EFI/<dir> holds the system's grub.cfg, given the directories under
 * EFI/ that have one (case as on the ESP): the one of its ID, else the only
 * one that is not BOOT; undefined when that is ambiguous or none.
 */
export function efiConfigDir(distroId: string, dirsWithGrubCfg: string[]): string | undefined {
  const candidates = dirsWithGrubCfg.filter((d) => d.toUpperCase() !== 'BOOT');
  const want = EFI_DIR_OF[distroId] ?? distroId;
  return candidates.find((d) => d.toLowerCase() === want) ?? (candidates.length === 1 ? candidates[0] : undefined);
}

/** 'stub' when the file only hands over to another grub.cfg (configfile, no menu, no blscfg); else 'full'. */
export function efiGrubCfgKind(text: string): 'stub' | 'full' {
  const lines = text.split('\n').map((l) => l.trim());
  const has = (re: RegExp) => lines.some((l) => re.test(l));
  return has(/^configfile\s/) && !has(/^(menuentry|submenu)\s/) && !has(/^blscfg\b/) && !has(/^### BEGIN /) ? 'stub' : 'full';
}

/**
 * The stub pointed at the target's GRUB directory: the UUID of every
 * `search … --fs-uuid` (and `search.fs_uuid`) becomes `uuid`, a
 * `set prefix=($var)PATH` gets `grubDir`. Anything else stays.
 */
export function fixEfiStub(text: string, target: { uuid: string; grubDir: string }, file: string): { text: string; changes: string[] } {
  if (!target.uuid) throw new FerryError('FERRY_CONFIGURE_FAILED', `${file}: the file system holding the GRUB directory has no UUID, so the UEFI stub cannot find it`);
  const changes: string[] = [];
  let searches = 0;
  const out = text.split('\n').map((line) => {
    // `search [options] --fs-uuid [options] UUID` (the name last, as grub2's own stubs write it), or `search.fs_uuid UUID VAR`.
    const m = /^(\s*search\s(?:.*\s)?--fs-uuid\s(?:.*\s)?)([^-\s]\S*)(\s*)$/.exec(line) ?? /^(\s*search\.fs_uuid\s+)(\S+)((?:\s.*)?)$/.exec(line);
    if (m) {
      searches++;
      if (m[2]!.toLowerCase() === target.uuid.toLowerCase()) return line;
      changes.push(`${file}: the stub searches for the GRUB directory's file system by UUID ${target.uuid} (was ${m[2]})`);
      return `${m[1]}${target.uuid}${m[3]}`;
    }
    const p = /^(\s*set\s+prefix=\(\$\w+\))(\S*)(\s*)$/.exec(line);
    if (p && p[2] !== target.grubDir) {
      changes.push(`${file}: the stub's prefix is ${target.grubDir} on that file system (was ${p[2]})`);
      return `${p[1]}${target.grubDir}${p[3]}`;
    }
    return line;
  });
  if (searches === 0) throw new FerryError('FERRY_CONFIGURE_FAILED', `${file} hands over to another grub.cfg without a search by UUID that ferry knows how to point at the target: ${text.trim().slice(0, 300)}`);
  return { text: out.join('\n'), changes };
}

const GRUBENV_HEAD = '# GRUB Environment Block\n';

/**
 * A GRUB environment block (grubenv) with `kernelopts` passed through
 * `rewrite`, padded with '#' to its size as it was (GRUB reads 1024 bytes);
 * unchanged when it has no kernelopts or `rewrite` changes nothing.
 */
export function rewriteGrubenv(text: string, rewrite: (kernelopts: string) => { cmdline: string; changes: string[] }, file: string): { text: string; changes: string[] } {
  if (!text.startsWith(GRUBENV_HEAD)) return { text, changes: [] };
  const body = text.replace(/#+$/, '');
  const m = /^kernelopts=(.*)$/m.exec(body);
  if (!m) return { text, changes: [] };
  const r = rewrite(m[1]!);
  if (r.changes.length === 0) return { text, changes: [] };
  const next = body.replace(/^kernelopts=.*$/m, () => `kernelopts=${r.cmdline}`);
  const size = Math.max(text.length, 1024);
  if (Buffer.byteLength(next) > size) throw new FerryError('FERRY_CONFIGURE_FAILED', `${file}: the rewritten kernelopts do not fit in the ${size}-byte environment block`);
  return { text: next + '#'.repeat(size - Buffer.byteLength(next)), changes: r.changes.map((c) => `${file} kernelopts: ${c}`) };
}
