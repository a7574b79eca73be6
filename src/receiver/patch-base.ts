// The base a patch is applied to: a copy of the receiver's file under a
// temporary name, which the changed pieces are then written into and which
// replaces the file once complete (the file itself is never half patched).
// Where the file system shares blocks (btrfs, xfs with reflink) the copy is
// a clone and costs nothing. Elsewhere (ext4) Node's copyFile falls back to
// copy_file_range, which writes every hole out as zeros: a sparse VM image
// or /var/log/lastlog of hundreds of GB became a full one on the target
// with its first delta, or filled the disk. Here only the data ranges are
// copied (protocol/file-pieces.ts sparseRanges: the extent map for a file
// with many holes, else a scan for zeros) and the holes stay holes.
// Owns: creating `to`. Must not touch: `from` (read only).

import { closeSync, constants, copyFileSync, fchmodSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { readFull, sparseRanges } from '../protocol/file-pieces.js';

const IO = 4 * 1024 * 1024;

/** Copies the regular file `from` to the new file `to` (mode included, as copyFile does), keeping its holes. */
export async function copyPatchBase(from: Buffer | string, to: Buffer | string): Promise<void> {
  try {
    copyFileSync(from, to, constants.COPYFILE_FICLONE_FORCE);
    return;
  } catch {
    // No clone here (EOPNOTSUPP on ext4, and whatever else a file system answers): the copy below
    // reports what is really wrong (a full disk, a vanished file).
  }
  const src = openSync(from, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(src);
    const ranges = st.blocks * 512 < st.size ? await sparseRanges(src, st.size, st.blocks * 512) : null;
    if (!ranges) {
      copyFileSync(from, to);
      return;
    }
    const dst = openSync(to, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
    try {
      fchmodSync(dst, st.mode & 0o7777);
      ftruncateSync(dst, st.size);
      const buf = Buffer.allocUnsafe(Math.min(IO, Math.max(1, st.size)));
      for (const r of ranges) {
        for (let pos = r.off; pos < r.off + r.len; ) {
          const want = Math.min(buf.length, r.off + r.len - pos);
          const got = readFull(src, buf, want, pos);
          if (got === 0) break; // the file shrank while copied: the patch's size sets the length
          for (let w = 0; w < got; ) w += writeSync(dst, buf, w, got - w, pos + w);
          pos += got;
        }
      }
    } finally {
      closeSync(dst);
    }
  } finally {
    closeSync(src);
  }
}
