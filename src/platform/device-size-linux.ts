// The size in bytes of a file or a block device on Linux, and a device
// number as MAJ:MIN. fstat reports 0 for block devices, so their size comes
// from /sys/dev/block/MAJ:MIN/size (in 512-byte sectors).

import { readFile, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';

export async function sizeOfPath(path: string, st?: Stats): Promise<number> {
  const s = st ?? (await stat(path));
  if (s.isFile()) return s.size;
  if (s.isBlockDevice()) {
    const sectors = Number((await readFile(`/sys/dev/block/${majorMinor(s.rdev)}/size`, 'utf8')).trim());
    return sectors * 512;
  }
  throw new Error(`${path} is neither a regular file nor a block device`);
}

/** 'MAJ:MIN' of a device number (st_rdev), in glibc's dev_t layout: major in bits 8–19 and 32–43, minor in bits 0–7 and 20–31. */
export function majorMinor(rdev: number): string {
  const major = (Math.floor(rdev / 2 ** 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | (Math.floor(rdev / 2 ** 12) & 0xfffff00);
  return `${major}:${minor}`;
}
