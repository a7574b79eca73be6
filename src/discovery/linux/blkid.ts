// `blkid -p -o export <device>` output: KEY=value lines, values with
// shell-style backslash escapes (VERSION=LVM2\ 001), and bytes above 127
// shown as M-x (an ext4 label "Données" reads LABEL=DonnM-CM-)es). With
// `blkid -d` the values are the raw bytes, nothing escaped: `raw` takes them
// as they are (what a label must be to be made again on the target).

export function parseBlkidExport(text: string, options: { raw?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const value = line.slice(eq + 1);
    out[line.slice(0, eq).trim()] = options.raw ? value : value.replace(/\\(.)/g, '$1');
  }
  return out;
}
