// `blkid -p -o export <device>` output: KEY=value lines, values with
// shell-style backslash escapes (VERSION=LVM2\ 001).

export function parseBlkidExport(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).replace(/\\(.)/g, '$1');
  }
  return out;
}
