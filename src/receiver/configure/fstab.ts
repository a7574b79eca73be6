// Rewriting /etc/fstab and /etc/crypttab for the target (pure): an entry
// whose device the target will not have (a device path, the /dev/mapper or
// /dev/VG path of an LV that became a partition, the UUID of a file system
// made with another) is rewritten to UUID= (or LABEL=) of the target's file
// system; a swap entry follows the target's swap. Only that field changes:
// comments, blank lines, options, order and the line's own spacing stay.
// Must not touch: anything but the text it is given.

import type { DeviceResolver } from './target-volumes.js';

export interface Rewritten {
  text: string;
  /** One line per change, for the reply and the target's log. */
  changes: string[];
}

/** Replaces the first whitespace-separated field of `line` by `value`, keeping the rest byte for byte. */
function replaceField(line: string, index: number, value: string): string {
  const re = /(\s*)(\S+)/g;
  let m: RegExpExecArray | null;
  let i = 0;
  while ((m = re.exec(line))) {
    if (i++ === index) return line.slice(0, m.index + m[1]!.length) + value + line.slice(m.index + m[0].length);
  }
  return line;
}

export function rewriteFstab(text: string, resolver: DeviceResolver, file = '/etc/fstab'): Rewritten {
  const changes: string[] = [];
  const lines = text.split('\n').map((line, n) => {
    const fields = line.trim().split(/\s+/);
    if (line.trim() === '' || line.trim().startsWith('#') || fields.length < 2) return line;
    const [spec, mountPoint, type] = fields as [string, string, string | undefined];
    const swap = type === 'swap';
    const r = resolver.resolve(spec, { mountPoint: swap ? undefined : mountPoint, swap });
    if (!r?.rewrite || r.rewrite === spec) return line;
    changes.push(`${file}:${n + 1}: ${spec} → ${r.rewrite} (${mountPoint}: ${r.volume.id}${r.volume.flattenedFrom ? `, was LV ${r.volume.flattenedFrom}` : ''})`);
    return replaceField(line, 0, r.rewrite);
  });
  return { text: lines.join('\n'), changes };
}

/** /etc/crypttab: NAME DEVICE KEYFILE OPTIONS; the device field follows the same rules. */
export function rewriteCrypttab(text: string, resolver: DeviceResolver, file = '/etc/crypttab'): Rewritten {
  const changes: string[] = [];
  const lines = text.split('\n').map((line, n) => {
    const fields = line.trim().split(/\s+/);
    if (line.trim() === '' || line.trim().startsWith('#') || fields.length < 2) return line;
    const device = fields[1]!;
    const swap = /(^|,)swap(,|$)/.test(fields[3] ?? '');
    const r = resolver.resolve(device, { swap });
    if (!r?.rewrite || r.rewrite === device) return line;
    changes.push(`${file}:${n + 1}: ${device} → ${r.rewrite} (${fields[0]})`);
    return replaceField(line, 1, r.rewrite);
  });
  return { text: lines.join('\n'), changes };
}

/** initramfs-tools' conf.d/resume (RESUME=…): the resume device follows the target's swap. */
export function rewriteResumeConf(text: string, resolver: DeviceResolver, file: string): Rewritten {
  const changes: string[] = [];
  const lines = text.split('\n').map((line, n) => {
    const m = /^(\s*RESUME=)(["']?)([^"'\s#]+)\2(.*)$/.exec(line);
    if (!m || m[3] === 'none' || m[3] === 'auto') return line;
    const r = resolver.resolve(m[3]!, { swap: true });
    if (!r?.rewrite || r.rewrite === m[3]) return line;
    changes.push(`${file}:${n + 1}: RESUME=${m[3]} → RESUME=${r.rewrite}`);
    return `${m[1]}${m[2]}${r.rewrite}${m[2]}${m[4]}`;
  });
  return { text: lines.join('\n'), changes };
}
