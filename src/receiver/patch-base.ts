// The base a patch is applied to: a copy of the receiver's file under a
// temporary name, which the changed pieces are then written into and which
// replaces the file once complete (the file itself is never half patched).
// Where the file system shares blocks (btrfs, xfs with reflink) the copy is
// a clone and costs nothing. Elsewhere (ext4) Node's copyFile falls back to
// copy_file_range, which writes every hole out as zeros: a sparse VM image
// or /var/log/lastlog of hundreds of GB became a full one on the target
// with its first delta, or filled the disk. Here only the data is copied:
// what the extent map says may hold data (a file with many holes,
// platform/file-extents.ts), else the whole file, read once, and in it no
// all-zero 4 KiB block.
// Owns: creating `to`. Must not touch: `from` (read only).

import { closeSync, constants, copyFileSync, fchmodSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { fdPath } from '../platform/fd-path.js';
import { extentsIfSparse } from '../platform/file-extents.js';
import { isAllZero } from '../protocol/chunk-hash.js';
import { readFull, type Range } from '../protocol/file-pieces.js';

const IO = 4 * 1024 * 1024;
/** The block a hole is made of: an all-zero block of this size is not written. */
const BLOCK = 4096;

/** Copies the regular file `from` (never through a symlink) to the new file `to`, mode included as copyFile does, keeping its holes. */
export async function copyPatchBase(from: Buffer | string, to: Buffer | string): Promise<void> {
  // Opened first, without following a symlink: the clone and the copy read this very file.
  const src = openSync(from, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    try {
      copyFileSync(fdPath(src), to, constants.COPYFILE_FICLONE_FORCE);
      return;
    } catch {
      // No clone here (EOPNOTSUPP on ext4, and whatever else a file system answers): the copy below
      // reports what is really wrong (a full disk, a vanished file).
    }
    const st = fstatSync(src);
    if (st.blocks * 512 >= st.size) {
      copyFileSync(fdPath(src), to);
      return;
    }
    // Where the data may be (the extent map of a file with many holes), else the whole file: read once, its
    // all-zero blocks skipped as they come (preallocated extents' included).
    const ranges: readonly Range[] = (await extentsIfSparse(src, st.size, st.blocks * 512)) ?? [{ off: 0, len: st.size }];
    const dst = openSync(to, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
    try {
      fchmodSync(dst, st.mode & 0o7777);
      ftruncateSync(dst, st.size);
      const buf = Buffer.allocUnsafe(Math.min(IO, Math.max(BLOCK, st.size)));
      for (const r of ranges) {
        for (let pos = r.off; pos < r.off + r.len; ) {
          const got = readFull(src, buf, Math.min(buf.length, r.off + r.len - pos), pos);
          if (got === 0) break; // the file shrank while copied: the patch's size sets the length
          writeNonZero(dst, buf.subarray(0, got), pos);
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

/** Writes `data` at `pos`, leaving out its all-zero 4 KiB blocks (holes in a file truncated to its size). */
function writeNonZero(fd: number, data: Buffer, pos: number): void {
  const write = (from: number, to: number) => {
    for (let w = from; w < to; ) w += writeSync(fd, data, w, to - w, pos + w);
  };
  let run = -1; // start of the run of data blocks being gathered
  for (let o = 0; o < data.length; o += BLOCK) {
    const zero = isAllZero(data.subarray(o, Math.min(data.length, o + BLOCK)));
    if (!zero && run < 0) run = o;
    else if (zero && run >= 0) {
      write(run, o);
      run = -1;
    }
  }
  if (run >= 0) write(run, data.length);
}
