// Rewriting a kernel command line for the target (pure), wherever one is
// kept: /etc/default/grub's GRUB_CMDLINE_LINUX(_DEFAULT), BLS entries'
// `options` lines (RHEL 8+), /etc/kernel/cmdline (what kernel-install gives
// the entries of kernels installed later: RHEL 9, Fedora), grub.cfg's
// `linux` lines. root= and resume=
// naming a device the target will not have become UUID= of the target's
// file system or swap; rd.lvm.lv=/rd.lvm.vg= of logical volumes that became
// partitions are dropped (dracut would wait for them and give up);
// `net.ifnames=0` is added so the target's first NIC is named eth0 whatever
// its bus position (the network rewrites rely on that name); `biosdevname=0`
// too on the RHEL family, whose biosdevname would rename it. Other arguments
// and their order stay.
// Must not touch: anything but the words it is given.

import type { DeviceResolver } from './target-volumes.js';

export interface CmdlineOptions {
  /** Arguments to add when missing ('net.ifnames=0'). */
  add: string[];
}

export function rewriteCmdline(cmdline: string, resolver: DeviceResolver, o: CmdlineOptions): { cmdline: string; changes: string[] } {
  const changes: string[] = [];
  const flattenedVgs = new Set(resolver.volumes.filter((v) => v.flattenedFrom).map((v) => v.flattenedFrom!.split('/')[0]!));
  const flattened = new Set(resolver.volumes.filter((v) => v.flattenedFrom).map((v) => v.flattenedFrom!));
  const words = cmdline.split(/\s+/).filter(Boolean);
  const out: string[] = [];
  for (const w of words) {
    const m = /^(root|resume)=(.+)$/.exec(w);
    if (m) {
      const r = resolver.resolve(m[2]!, m[1] === 'resume' ? { swap: true } : { mountPoint: '/' });
      if (r?.rewrite && r.rewrite !== m[2]) {
        out.push(`${m[1]}=${r.rewrite}`);
        changes.push(`${w} → ${m[1]}=${r.rewrite}`);
        continue;
      }
    }
    const lv = /^rd\.lvm\.lv=(.+)$/.exec(w)?.[1];
    const vg = /^rd\.lvm\.vg=(.+)$/.exec(w)?.[1];
    if ((lv && flattened.has(lv)) || (vg && flattenedVgs.has(vg))) {
      changes.push(`${w} dropped (the logical volume became a partition)`);
      continue;
    }
    out.push(w);
  }
  for (const a of o.add) {
    const key = a.split('=')[0]!;
    if (out.some((w) => w.split('=')[0] === key)) continue;
    out.push(a);
    changes.push(`${a} added`);
  }
  return { cmdline: out.join(' '), changes };
}

/**
 * /etc/default/grub: GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT
 * rewritten (the additions go into GRUB_CMDLINE_LINUX only, which every entry
 * gets, recovery too); GRUB_DISABLE_LINUX_UUID=true, which makes
 * grub-mkconfig name the root by device path, is commented out.
 */
export function rewriteDefaultGrub(text: string, resolver: DeviceResolver, o: CmdlineOptions, file = '/etc/default/grub'): { text: string; changes: string[] } {
  const changes: string[] = [];
  let sawLinux = false;
  const lines = text.split('\n').map((line) => {
    const m = /^(\s*)(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=(["']?)(.*?)\3(\s*(?:#.*)?)$/.exec(line);
    if (m) {
      const isLinux = m[2] === 'GRUB_CMDLINE_LINUX';
      sawLinux ||= isLinux;
      const r = rewriteCmdline(m[4]!, resolver, { add: isLinux ? o.add : [] });
      if (r.changes.length === 0) return line;
      changes.push(...r.changes.map((c) => `${file}: ${m[2]}: ${c}`));
      const q = m[3] || '"';
      return `${m[1]}${m[2]}=${q}${r.cmdline}${q}${m[5]}`;
    }
    if (/^\s*GRUB_DISABLE_LINUX_UUID=["']?true["']?\s*$/.test(line)) {
      changes.push(`${file}: GRUB_DISABLE_LINUX_UUID=true commented out (the root must be named by UUID)`);
      return `#${line} # ferry: the target's root is named by UUID`;
    }
    return line;
  });
  if (!sawLinux && o.add.length > 0) {
    lines.splice(lines.length - (lines[lines.length - 1] === '' ? 1 : 0), 0, `GRUB_CMDLINE_LINUX="${o.add.join(' ')}"`);
    changes.push(`${file}: GRUB_CMDLINE_LINUX="${o.add.join(' ')}" added`);
  }
  return { text: lines.join('\n'), changes };
}

/** BLS entries (/boot/loader/entries/*.conf, RHEL 8+): the `options` line. */
export function rewriteBlsEntry(text: string, resolver: DeviceResolver, o: CmdlineOptions, file: string): { text: string; changes: string[] } {
  const changes: string[] = [];
  const lines = text.split('\n').map((line) => {
    const m = /^(options\s+)(.*)$/.exec(line);
    // RHEL 8 entries say `options $kernelopts`: grubenv holds them (rewritten after grub2-mkconfig, boot-loader.ts).
    if (!m || m[2]!.trim() === '$kernelopts') return line;
    const r = rewriteCmdline(m[2]!, resolver, o);
    changes.push(...r.changes.map((c) => `${file}: ${c}`));
    return `${m[1]}${r.cmdline}`;
  });
  return { text: lines.join('\n'), changes };
}

/** /etc/kernel/cmdline (RHEL 9, Fedora; kernel-install copies it into new BLS entries): its one line, comments kept. */
export function rewriteKernelCmdlineFile(text: string, resolver: DeviceResolver, o: CmdlineOptions, file = '/etc/kernel/cmdline'): { text: string; changes: string[] } {
  const changes: string[] = [];
  let done = false;
  const lines = text.split('\n').map((line) => {
    if (done || line.trim() === '' || line.trimStart().startsWith('#')) return line;
    done = true;
    const r = rewriteCmdline(line, resolver, o);
    changes.push(...r.changes.map((c) => `${file}: ${c}`));
    return r.changes.length > 0 ? r.cmdline : line;
  });
  return { text: lines.join('\n'), changes };
}
