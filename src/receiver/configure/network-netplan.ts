// netplan files (/etc/netplan/*.yaml, Ubuntu and Debian cloud images) for
// the target (pure, through the yaml library's document model so comments
// stay): under `ethernets`, `match: macaddress` is relaxed to match by name
// `e*` (every Ethernet NIC name the target can have), `set-name` (which would
// rename the new NIC after the source's) is removed, an entry keyed by a NIC
// name the target will not have and matching nothing is re-keyed eth0
// (network-names.ts) when it is the primary one; the primary falls back to
// DHCP (dhcp4: true, its addresses/gateway4/routes removed) unless the
// operator keeps static addresses. Other entries, keys and comments stay.
// Must not touch: anything but the text it is given.

import { isMap, parseDocument, type YAMLMap } from 'yaml';
import type { NetworkOptions } from './network-ifupdown.js';
import { PRIMARY_NIC, willBeMissing } from './network-names.js';

export function rewriteNetplan(text: string, o: NetworkOptions, file: string): { text: string; changes: string[] } {
  const doc = parseDocument(text);
  const changes: string[] = [];
  const ethernets = doc.getIn(['network', 'ethernets']);
  if (doc.errors.length > 0 || !isMap(ethernets)) return { text, changes };
  const entries = ethernets.items.filter((p) => isMap(p.value));
  const keyOf = (p: (typeof entries)[number]) => String((p.key as { value?: unknown })?.value ?? p.key);
  const primary = entries.find((p) => (p.value as YAMLMap).has('gateway4') || (p.value as YAMLMap).has('routes')) ?? entries[0];
  for (const p of entries) {
    const name = keyOf(p);
    const e = p.value as YAMLMap;
    const match = e.get('match');
    if (isMap(match) && match.has('macaddress')) {
      match.delete('macaddress');
      if (!match.has('name') && !match.has('driver')) match.set('name', 'e*');
      changes.push(`${file}: ethernets.${name}: match by MAC removed (matched by name e* where nothing else is left)`);
    }
    if (e.has('set-name')) {
      changes.push(`${file}: ethernets.${name}: set-name ${String(e.get('set-name'))} removed`);
      e.delete('set-name');
    }
    if (p !== primary) continue;
    if (!o.keepStaticNetwork && (e.has('addresses') || e.has('gateway4')) && e.get('dhcp4') !== true) {
      for (const k of ['addresses', 'gateway4', 'gateway6', 'routes']) e.delete(k);
      e.set('dhcp4', true);
      changes.push(`${file}: ethernets.${name}: static addresses → dhcp4 (the new network's addresses are not the source's)`);
    }
    if (!e.has('match') && willBeMissing(name)) {
      p.key = doc.createNode(PRIMARY_NIC) as typeof p.key;
      changes.push(`${file}: ethernets.${name} renamed ${PRIMARY_NIC} (the target's first NIC, net.ifnames=0)`);
    }
  }
  return changes.length > 0 ? { text: doc.toString(), changes } : { text, changes };
}
