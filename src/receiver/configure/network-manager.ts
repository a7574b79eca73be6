// NetworkManager keyfile profiles (/etc/NetworkManager/system-connections/
// *.nmconnection) for the target (pure): `mac-address=` in [ethernet] (the
// profile binds to the source's NIC) is removed, and so is `interface-name=`
// naming a NIC the target will not have (network-names.ts), so the profile
// applies to the new NIC; the primary profile's IPv4 falls back to DHCP
// (method=auto, its addresses commented out) unless the operator keeps static
// addresses. Another NIC's profile that this unbinds would apply to any NIC,
// the primary's eth0 included, and NetworkManager could bring eth0 up with
// it (a backend network's static address instead of DHCP): it gets
// `autoconnect=false` (it stays there for the operator to bind to the new
// NIC it belongs to). Other keys, sections and comments stay.
// Must not touch: anything but the text it is given.

import type { NetworkOptions } from './network-ifupdown.js';
import { MARK, lineCommenter, willBeMissing } from './network-names.js';


/** True when the profile's IPv4 names (or named, before configure) a gateway (`gateway=`, or an address with one: `address1=10.0.0.20/24,10.0.0.1`): the primary, if any is. */
export function nmHasGateway(text: string): boolean {
  // Lines this rewrite commented out count: a second run must pick the same primary.
  const v4 = /^\s*\[ipv4\]\s*$([^[]*)/m.exec(text.split(MARK).join(''))?.[1] ?? '';
  return /^\s*gateway\s*=\s*\S/m.test(v4) || /^\s*address\d*\s*=\s*[^,\s]+,\s*\S/m.test(v4);
}

export function rewriteNmProfile(text: string, o: NetworkOptions & { primary: boolean }, file: string): { text: string; changes: string[] } {
  const changes: string[] = [];
  let section = '';
  const lines = text.split('\n');
  const staticV4 = /\[ipv4\][^[]*^\s*method\s*=\s*manual\s*$/m.test(text);
  let unbound = false;
  let connectionEnd = -1;
  let autoconnect = -1;
  const comment = lineCommenter(lines, changes, file);
  lines.forEach((l, i) => {
    const s = /^\s*\[([^\]]+)\]/.exec(l);
    if (s) {
      section = s[1]!;
      return;
    }
    if (section === 'connection' && l.trim() !== '') connectionEnd = i;
    if (l.trim().startsWith('#')) return;
    if (section === 'connection' && /^\s*autoconnect\s*=/.test(l)) autoconnect = i;
    if (section === 'ethernet' && /^\s*mac-address\s*=/.test(l)) {
      comment(i, "bound to the source's NIC");
      unbound = true;
    } else if (section === 'connection' && /^\s*interface-name\s*=/.test(l) && willBeMissing(l.split('=')[1]!.trim())) {
      comment(i, 'the target has no NIC of that name');
      unbound = true;
    } else if (section === 'ipv4' && o.primary && staticV4 && !o.keepStaticNetwork) {
      if (/^\s*method\s*=\s*manual\s*$/.test(l)) {
        changes.push(`${file}:${i + 1}: ipv4 method=manual → method=auto (the new network's addresses are not the source's)`);
        lines[i] = 'method=auto';
      } else if (/^\s*(address\d*|addresses|gateway)\s*=/.test(l)) comment(i, 'static address of the source');
    }
  });
  if (unbound && !o.primary && connectionEnd >= 0) {
    const why = "another NIC's profile, unbound from the source's NIC, would also apply to the primary eth0";
    if (autoconnect >= 0) {
      if (!/=\s*false\s*$/.test(lines[autoconnect]!)) {
        changes.push(`${file}:${autoconnect + 1}: ${lines[autoconnect]!.trim()} → autoconnect=false (${why})`);
        lines[autoconnect] = 'autoconnect=false';
      }
    } else {
      lines.splice(connectionEnd + 1, 0, 'autoconnect=false');
      changes.push(`${file}: autoconnect=false added (${why})`);
    }
  }
  return { text: lines.join('\n'), changes };
}
