// /etc/network/interfaces (ifupdown, Debian family) for the target (pure):
// the primary interface (the one with a gateway, else the first NIC
// configured) is named eth0, the name the target's first NIC gets
// (network-names.ts), and falls back to DHCP unless the operator keeps
// static addresses (its static options are commented out, not deleted);
// stanzas of other NICs the target will not have are commented out; an
// `hwaddress` option (a MAC set or matched) is commented out. lo and virtual
// interfaces, comments and everything else stay. Idempotent: a file it wrote
// comes back unchanged.
// Must not touch: anything but the text it is given.

import { PRIMARY_NIC, isPhysicalNic, lineCommenter, willBeMissing } from './network-names.js';

export interface NetworkOptions {
  /** Keep the primary interface's static addresses instead of falling back to DHCP. */
  keepStaticNetwork: boolean;
}

const STANZA = /^\s*(iface|auto|allow-[a-z-]+|mapping|source|source-directory|no-auto-down|no-scripts)\b/;
const STATIC_OPTION = /^\s*(address|netmask|gateway|broadcast|network|pointopoint|metric|hwaddress|up|down|post-up|pre-down|dns-[a-z]+|scope)\b/;

interface Iface {
  name: string;
  family: string;
  method: string;
  line: number;
  options: number[];
  gateway: boolean;
}

function ifacesOf(lines: string[]): Iface[] {
  const out: Iface[] = [];
  let cur: Iface | undefined;
  lines.forEach((l, i) => {
    if (l.trim().startsWith('#') || l.trim() === '') return;
    const m = /^\s*iface\s+(\S+)\s+(\S+)\s+(\S+)/.exec(l);
    if (m) {
      cur = { name: m[1]!, family: m[2]!, method: m[3]!, line: i, options: [], gateway: false };
      out.push(cur);
      return;
    }
    if (STANZA.test(l)) {
      cur = undefined;
      return;
    }
    if (cur) {
      cur.options.push(i);
      if (/^\s*gateway\b/.test(l)) cur.gateway = true;
    }
  });
  return out;
}

export function rewriteInterfaces(text: string, o: NetworkOptions, file = '/etc/network/interfaces'): { text: string; changes: string[] } {
  const lines = text.split('\n');
  const changes: string[] = [];
  const ifaces = ifacesOf(lines);
  const nics = ifaces.filter((i) => isPhysicalNic(i.name));
  const primary = (nics.find((i) => i.gateway) ?? nics[0])?.name;
  const rename = primary !== undefined && primary !== PRIMARY_NIC && !nics.some((i) => i.name === PRIMARY_NIC) ? primary : undefined;
  const word = (l: string, from: string, to: string) => l.replace(new RegExp(`(\\s)${from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=\\s|$)`, 'g'), `$1${to}`);

  const comment = lineCommenter(lines, changes, file);

  for (const f of ifaces) {
    const isPrimary = f.name === primary;
    if (isPrimary) {
      if (f.family === 'inet' && f.method === 'static' && !o.keepStaticNetwork) {
        changes.push(`${file}:${f.line + 1}: ${f.name} inet static → dhcp (the new network's addresses are not the source's)`);
        lines[f.line] = lines[f.line]!.replace(/(\sinet\s+)static\b/, '$1dhcp');
        for (const i of f.options) if (STATIC_OPTION.test(lines[i]!)) comment(i, 'static address of the source');
      } else {
        for (const i of f.options) if (/^\s*hwaddress\b/.test(lines[i]!)) comment(i, "bound to the source's MAC");
      }
      continue;
    }
    if (willBeMissing(f.name)) {
      comment(f.line, `the target has no NIC named ${f.name}`);
      for (const i of f.options) comment(i, `option of ${f.name}`);
    } else {
      for (const i of f.options) if (/^\s*hwaddress\b/.test(lines[i]!)) comment(i, "bound to the source's MAC");
    }
  }
  // auto/allow-hotplug lines: the primary renamed, other missing NICs dropped from them.
  lines.forEach((l, i) => {
    if (l.startsWith('#') || !/^\s*(auto|allow-[a-z-]+)\s/.test(l)) return;
    const names = l.trim().split(/\s+/).slice(1);
    const missing = names.filter((n) => n !== rename && willBeMissing(n));
    if (missing.length === names.length && missing.length > 0) {
      comment(i, `the target has no NIC named ${missing.join(', ')}`);
      return;
    }
    let next = l;
    for (const n of missing) next = word(next, n, '').replace(/\s+$/, '');
    if (next !== l) {
      changes.push(`${file}:${i + 1}: ${missing.join(', ')} dropped (no such NIC on the target)`);
      lines[i] = next;
    }
  });
  if (rename) {
    lines.forEach((l, i) => {
      if (l.startsWith('#')) return;
      const next = word(l, rename, PRIMARY_NIC);
      if (next !== l) lines[i] = next;
    });
    changes.push(`${file}: primary interface ${rename} renamed ${PRIMARY_NIC} (the target's first NIC, net.ifnames=0)`);
  }
  return { text: lines.join('\n'), changes };
}
