// NetworkManager keyfile profiles (/etc/NetworkManager/system-connections/
// *.nmconnection) for the target (pure): `mac-address=` in [ethernet] (the
// profile binds to the source's NIC) is removed, and so is `interface-name=`
// naming a NIC the target will not have (network-names.ts), so the profile
// applies to the new NIC; the primary profile's IPv4 falls back to DHCP
// (method=auto, its addresses commented out) unless the operator keeps static
// addresses. Other keys, sections and comments stay.
// Must not touch: anything but the text it is given.

import type { NetworkOptions } from './network-ifupdown.js';
import { willBeMissing } from './network-names.js';

const MARK = '#ferry# ';

export function rewriteNmProfile(text: string, o: NetworkOptions & { primary: boolean }, file: string): { text: string; changes: string[] } {
  const changes: string[] = [];
  let section = '';
  const lines = text.split('\n');
  const staticV4 = /\[ipv4\][^[]*^\s*method\s*=\s*manual\s*$/m.test(text);
  const comment = (i: number, why: string) => {
    changes.push(`${file}:${i + 1}: '${lines[i]!.trim()}' commented out (${why})`);
    lines[i] = MARK + lines[i];
  };
  lines.forEach((l, i) => {
    const s = /^\s*\[([^\]]+)\]/.exec(l);
    if (s) {
      section = s[1]!;
      return;
    }
    if (l.trim().startsWith('#')) return;
    if (section === 'ethernet' && /^\s*mac-address\s*=/.test(l)) comment(i, "bound to the source's NIC");
    else if (section === 'connection' && /^\s*interface-name\s*=/.test(l) && willBeMissing(l.split('=')[1]!.trim())) comment(i, 'the target has no NIC of that name');
    else if (section === 'ipv4' && o.primary && staticV4 && !o.keepStaticNetwork) {
      if (/^\s*method\s*=\s*manual\s*$/.test(l)) {
        changes.push(`${file}:${i + 1}: ipv4 method=manual → method=auto (the new network's addresses are not the source's)`);
        lines[i] = 'method=auto';
      } else if (/^\s*(address\d*|addresses|gateway)\s*=/.test(l)) comment(i, 'static address of the source');
    }
  });
  return { text: lines.join('\n'), changes };
}
