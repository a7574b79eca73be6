// Parsing /proc/self/mountinfo (pure): discovery reads mounts from it, and the
// receiver finds its own stale mounts and the mounts that hold a target disk.
// Must not touch: the file itself (callers read it), anything but parsing.
//
// /proc/self/mountinfo: one mount per line,
//   id parent major:minor root mount-point options [optional…] - fstype source super-options
// with spaces and other bytes in paths written as octal escapes (\040).

export interface MountEntry {
  majorMinor: string;
  /** Path inside the file system that is mounted (a Btrfs subvolume path, a bind source). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: string;
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    const dash = f.indexOf('-', 6);
    if (f.length < 10 || dash < 0 || f.length < dash + 3) continue;
    out.push({
      majorMinor: f[2]!,
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      fsType: f[dash + 1]!,
      source: unescape(f[dash + 2]!),
      superOptions: f[dash + 3] ?? '',
    });
  }
  return out;
}

/** The value of `key=` in a comma-separated option list, or undefined. */
export function mountOption(options: string, key: string): string | undefined {
  for (const o of options.split(',')) if (o.startsWith(`${key}=`)) return o.slice(key.length + 1);
  return undefined;
}
