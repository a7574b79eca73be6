// The environment discovery runs its tools in (sfdisk, blkid, lsblk, LVM's
// and Btrfs's tools): the caller's, with the sbin directories on PATH (a
// non-root PATH often lacks them, and hasTool() looks there too), the C
// locale (the parsers read English output) and LVM's warning about
// inherited descriptors silenced. exec() strips the bundle's own variables.

import { delimiter } from 'node:path';

export function toolPath(path = process.env.PATH ?? ''): string {
  const dirs = path.split(delimiter).filter(Boolean);
  for (const d of ['/usr/sbin', '/sbin']) if (!dirs.includes(d)) dirs.push(d);
  return dirs.join(delimiter);
}

export function discoveryToolEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, PATH: toolPath(env.PATH ?? '/usr/bin:/bin'), LC_ALL: 'C', LANG: 'C', LVM_SUPPRESS_FD_WARNINGS: '1' };
}
