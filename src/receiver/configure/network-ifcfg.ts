// RHEL-family ifcfg files (/etc/sysconfig/network-scripts/ifcfg-NAME) for the
// target (pure): HWADDR= and MACADDR= lines are commented out (they bind the
// profile to the source's NIC, or set its MAC); the primary interface's file
// names the device eth0 (network-names.ts) and falls back to DHCP unless the
// operator keeps static addresses (IPADDR, PREFIX, NETMASK, GATEWAY … are
// commented out, not deleted). Another NIC's file naming a device the target
// will not have stops starting at boot (ONBOOT=no: RHEL 7's network service
// fails when a device is missing; NetworkManager would never find it). The caller renames the file itself
// (ifcfg-eth0). Idempotent: a file it wrote comes back unchanged.
// Must not touch: anything but the text it is given.

import type { NetworkOptions } from './network-ifupdown.js';
import { PRIMARY_NIC, lineCommenter, willBeMissing } from './network-names.js';

const STATIC = /^\s*(IPADDR\d*|PREFIX\d*|NETMASK\d*|GATEWAY\d*|BROADCAST|NETWORK)=/;

/** The DEVICE= of an ifcfg file ('' when it has none). */
export function ifcfgDevice(text: string): string {
  return /^\s*DEVICE=["']?([^"'\s]+)/m.exec(text)?.[1] ?? '';
}

export function rewriteIfcfg(text: string, o: NetworkOptions & { primary: boolean }, file: string): { text: string; changes: string[] } {
  const changes: string[] = [];
  const lines = text.split('\n');
  const comment = lineCommenter(lines, changes, file);
  const isStatic = lines.some((l) => /^\s*BOOTPROTO=["']?(none|static)["']?\s*$/.test(l));
  const missing = willBeMissing(ifcfgDevice(text));
  lines.forEach((l, i) => {
    if (l.trim().startsWith('#')) return;
    if (/^\s*(HWADDR|MACADDR)=/.test(l)) comment(i, "bound to the source's NIC");
    else if (!o.primary && missing && /^\s*ONBOOT=["']?yes["']?\s*$/i.test(l)) {
      changes.push(`${file}:${i + 1}: ONBOOT=yes → ONBOOT=no (the target has no NIC named ${ifcfgDevice(text)}: RHEL 7's network service would fail on it)`);
      lines[i] = 'ONBOOT=no';
    } else if (o.primary && /^\s*DEVICE=/.test(l) && ifcfgDevice(l) !== PRIMARY_NIC) {
      changes.push(`${file}:${i + 1}: DEVICE=${ifcfgDevice(l)} → DEVICE=${PRIMARY_NIC} (the target's first NIC, net.ifnames=0)`);
      lines[i] = `DEVICE=${PRIMARY_NIC}`;
    } else if (o.primary && isStatic && !o.keepStaticNetwork) {
      if (/^\s*BOOTPROTO=/.test(l)) {
        changes.push(`${file}:${i + 1}: ${l.trim()} → BOOTPROTO=dhcp (the new network's addresses are not the source's)`);
        lines[i] = 'BOOTPROTO=dhcp';
      } else if (STATIC.test(l)) comment(i, 'static address of the source');
    }
  });
  return { text: lines.join('\n'), changes };
}
