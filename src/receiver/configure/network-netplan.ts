// netplan files (/etc/netplan/*.yaml, Ubuntu and Debian cloud images) for
// the target (pure, through the yaml library's document model so comments
// stay): under `ethernets`, the primary entry's `match` by MAC (or by the
// source NIC's driver or a name the target will not have) is relaxed to
// match by name `e*` (every Ethernet NIC name the target can have); another
// NIC's entry only loses its MAC match (relaxed to e* it would match the
// primary eth0 too); `set-name` (which would rename the new NIC after the
// source's) is removed, an entry keyed by a NIC
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
  // The primary: the entry with a gateway; on a second run (its gateway gone) the one configure made primary: keyed eth0 or matching e*.
  const matchName = (p: (typeof entries)[number]) => {
    const m = (p.value as YAMLMap).get('match');
    return isMap(m) ? m.get('name') : undefined;
  };
  const primary =
    entries.find((p) => (p.value as YAMLMap).has('gateway4') || (p.value as YAMLMap).has('routes')) ??
    entries.find((p) => keyOf(p) === PRIMARY_NIC || matchName(p) === 'e*') ??
    entries[0];
  for (const p of entries) {
    const name = keyOf(p);
    const e = p.value as YAMLMap;
    const match = e.get('match');
    if (isMap(match) && match.has('macaddress') && p !== primary) {
      // Relaxed to e*, another NIC's entry would match the primary eth0 too: it matches what its key names, if the target has that.
      match.delete('macaddress');
      if (match.items.length === 0) e.delete('match');
      changes.push(`${file}: ethernets.${name}: match by MAC removed (another NIC's entry: it applies to a NIC named ${name}, if the target has one)`);
    } else if (isMap(match) && (match.has('macaddress') || match.has('driver') || willBeMissing(String(match.get('name') ?? '')))) {
      // The primary bound to the source's NIC by MAC, driver or a name the target will not have.
      const was = ['macaddress', 'driver', 'name'].filter((k) => match.has(k)).map((k) => `${k} ${String(match.get(k))}`).join(', ');
      for (const k of ['macaddress', 'driver']) match.delete(k);
      if (willBeMissing(String(match.get('name') ?? ''))) match.delete('name');
      if (!match.has('name')) match.set('name', 'e*');
      changes.push(`${file}: ethernets.${name}: match by ${was} → by name ${String(match.get('name'))} (the target's NICs, net.ifnames=0)`);
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
