// Which NIC names the migrated server will have (pure). configure adds
// net.ifnames=0 to the kernel command line (kernel-cmdline.ts), so the
// target's NICs are eth0, eth1 … in the order the kernel finds them, whatever
// bus, slot or MAC the new hardware gives them (as peers do: a predictable
// name such as ens3 or enp0s3 depends on the PCI slot of the source's NIC,
// which the new machine does not share). So a configuration bound to a
// physical name other than ethN is bound to a NIC the target will not have;
// virtual interfaces (lo, bond0, br0, eth0.100, vlan…) are not NICs and keep
// their names.

/** The name the target's first NIC gets. */
export const PRIMARY_NIC = 'eth0';

/** Names of physical NICs under the kernel's, systemd's and biosdevname's schemes. */
const PHYSICAL = /^(eth\d+|en[a-z][a-z0-9]*|em\d+|p\d+p\d+(_\d+)?)$/;

export function isPhysicalNic(name: string): boolean {
  return PHYSICAL.test(name) && !name.includes('.');
}

/** True when a physical NIC name will not exist on the target (only ethN will). */
export function willBeMissing(name: string): boolean {
  return isPhysicalNic(name) && !/^eth\d+$/.test(name);
}

/** The mark configure puts before a line it comments out; a second run sees it and leaves the line. */
export const MARK = '#ferry# ';

/**
 * A function that comments out line i of `lines` (once: an already marked
 * line is left) and records `file:line: 'text' commented out (why)` in
 * `changes` — the one way the network rewriters disable a source-bound line.
 */
export function lineCommenter(lines: string[], changes: string[], file: string): (i: number, why: string) => void {
  return (i, why) => {
    if (lines[i]!.startsWith(MARK)) return;
    changes.push(`${file}:${i + 1}: '${lines[i]!.trim()}' commented out (${why})`);
    lines[i] = MARK + lines[i];
  };
}
