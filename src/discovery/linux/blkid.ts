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

/**
 * `blkid -p -d -o export DEV…` for several devices, split into each device's
 * block. blkid prints the devices in the order given, each block opening
 * with its DEVNAME= line, and stops at the first device where it finds
 * nothing (exit 2): the result holds a prefix of `devices`, and the caller
 * probes the rest alone. The DEVNAME lines must be exactly that prefix, in
 * order; anything else (a raw label can hold a newline and a DEVNAME= of its
 * own) gives an empty map: every device is then probed alone, as one call
 * per device always was.
 */
export function splitBlkidExport(text: string, devices: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  let cur: string[] | undefined;
  const close = () => {
    if (cur) out.set(devices[out.size]!, `${cur.join('\n')}\n`);
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('DEVNAME=')) {
      close();
      if (line.slice('DEVNAME='.length) !== devices[out.size]) return new Map();
      cur = [line];
      continue;
    }
    if (!cur) {
      if (line !== '') return new Map();
      continue;
    }
    cur.push(line);
  }
  close();
  return out;
}
