// Gateways from the kernel's routing tables (/proc/net/route,
// /proc/net/ipv6_route), per interface.

function hexToIpv4LittleEndian(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}

/** Default IPv4 gateway of each interface (lowest metric first). */
export function parseIpv4DefaultGateways(text: string): Map<string, string> {
  const rows: { iface: string; gw: string; metric: number }[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, gw, flags, , , metric, mask] = f as [string, string, string, string, string, string, string, string];
    const RTF_GATEWAY = 0x2;
    if (dest !== '00000000' || mask !== '00000000' || !(parseInt(flags, 16) & RTF_GATEWAY)) continue;
    rows.push({ iface, gw: hexToIpv4LittleEndian(gw), metric: Number(metric) });
  }
  rows.sort((a, b) => a.metric - b.metric);
  const out = new Map<string, string>();
  for (const r of rows) if (!out.has(r.iface)) out.set(r.iface, r.gw);
  return out;
}

function hexToIpv6(hex: string): string {
  const groups = hex.match(/.{4}/g)!.map((g) => parseInt(g, 16).toString(16));
  // compress the longest run of zero groups
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (bestLen < 2) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Default IPv6 gateway of each interface. */
export function parseIpv6DefaultGateways(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const rows: { iface: string; gw: string; metric: number }[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [dest, plen, , , nextHop, metric] = f as [string, string, string, string, string, string];
    const iface = f[9]!;
    if (!/^0{32}$/.test(dest) || plen !== '00' || /^0{32}$/.test(nextHop) || iface === 'lo') continue;
    rows.push({ iface, gw: hexToIpv6(nextHop), metric: parseInt(metric, 16) });
  }
  rows.sort((a, b) => a.metric - b.metric);
  for (const r of rows) if (!out.has(r.iface)) out.set(r.iface, r.gw);
  return out;
}
