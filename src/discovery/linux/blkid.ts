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
    out[line.slice(0, eq).trim()] = options.raw ? value : unescapeValue(value);
  }
  return out;
}

/** An escaped value with blkid's backslashes undone (its ^X and M-x forms stay as they are). */
function unescapeValue(value: string): string {
  return value.replace(/\\(.)/g, '$1');
}

/**
 * `blkid -p -o export DEV…` for several devices (escaped, not `-d`), split
 * into each device's block. blkid prints the devices in the order given,
 * each block opening with its DEVNAME= line, and stops at the first device
 * where it finds nothing (exit 2); it skips one it cannot open. Escaped, no
 * value holds a newline (blkid prints one as ^J), so every DEVNAME= line is
 * blkid's own: a raw label (`-d`) could hold "\nDEVNAME=…" and stand in
 * for a device blkid skipped. The result holds the devices the DEVNAME lines
 * name, which must be `devices` in order, some left out; anything else gives
 * an empty map. The caller probes every device not in it alone.
 */
export function splitBlkidExport(text: string, devices: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  let next = 0;
  let cur: { dev: string; lines: string[] } | undefined;
  const close = () => {
    if (cur) out.set(cur.dev, `${cur.lines.join('\n')}\n`);
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('DEVNAME=')) {
      close();
      const dev = line.slice('DEVNAME='.length);
      const at = devices.indexOf(dev, next);
      if (at < 0) return new Map();
      next = at + 1;
      cur = { dev, lines: [line] };
      continue;
    }
    if (!cur) {
      if (line !== '') return new Map();
      continue;
    }
    cur.lines.push(line);
  }
  close();
  return out;
}

/**
 * One device's block of escaped `blkid -o export` output as `-d` would have
 * printed it (values as their bytes), or undefined when that cannot be told
 * from the text: blkid escapes the shell's special characters with a
 * backslash (undone here), but shows a control byte as ^X and a byte above
 * 127 as M-x, which a value can also hold literally. Such a device is probed
 * alone with -d.
 */
export function rawFromEscaped(block: string): string | undefined {
  if (block.includes('^') || block.includes('M-')) return undefined;
  return block
    .split('\n')
    .map((line) => {
      const eq = line.indexOf('=');
      return eq <= 0 ? line : `${line.slice(0, eq + 1)}${unescapeValue(line.slice(eq + 1))}`;
    })
    .join('\n');
}
