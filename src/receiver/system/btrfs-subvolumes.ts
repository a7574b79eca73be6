// Recreating a Btrfs file system's subvolumes on its mounted top level
// (subvolid=5): one after the other in the layout's order (parents first),
// the directories between a parent and a nested subvolume made as plain
// directories; the source's read-only snapshots become ordinary writable
// subvolumes (the copy writes into them); then the default subvolume set by
// path. Not side by side: Btrfs numbers subvolumes in the order they are
// made, so a layout that lists them in the source's order (discovery's, by
// id) gets the source's ids where those were 256, 257, … (an fstab may mount
// with subvolid=); made at once they came out in any order (tried: 2026-12-07).
// Must not touch: anything outside the top level it is given.

import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { exec } from '../../platform/exec.js';
import type { BtrfsSubvolume } from '../../layout/model.js';

export async function createSubvolumes(top: string, subvolumes: BtrfsSubvolume[], defaultSubvolume: string): Promise<string[]> {
  const done: string[] = [];
  for (const s of subvolumes) {
    await mkdir(dirname(join(top, s.path)), { recursive: true });
    await exec('btrfs', ['subvolume', 'create', join(top, s.path)]);
    done.push(s.path);
  }
  if (defaultSubvolume) await exec('btrfs', ['subvolume', 'set-default', join(top, defaultSubvolume)]);
  return done;
}
