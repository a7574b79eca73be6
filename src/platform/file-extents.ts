// Where a sparse file's data is, without reading its holes: the file's
// extent map (FIEMAP) as e2fsprogs' `filefrag -e` prints it. Node has no
// lseek(SEEK_DATA) and no ioctl; reading a hole still costs a page of
// zeroes per 4 KiB (a 300 MB sparse file with 4 MB of data: 0.57 s of
// system time cold, and 300 MB of page cache, against a few ms for
// filefrag), and /var/log/lastlog of a server with large UIDs is hundreds
// of GB of holes. filefrag is in e2fsprogs, which every Linux distribution
// installs; where it is missing or the file system has no FIEMAP (tmpfs),
// the answer is null and the caller scans the file for zeros as before.
//
// The file is handed to filefrag as an open descriptor (/dev/fd/3): it maps
// the very inode the caller opened, and no file name (which may hold a
// newline) is printed among the lines that are parsed. A map is taken only
// when nothing in it is uncertain (see dataExtents); preallocated ranges are
// read by the caller, since written data can sit in them unconverted.
// Owns: running filefrag and reading its output. Must not touch: the file.

import { exec } from './exec.js';

/**
 * Below this much of holes (apparent size less allocated bytes) a sparse
 * file is read whole or scanned for zeros rather than mapped: starting
 * filefrag costs about what reading 5 MiB of holes does, and small files
 * with few blocks (inline data) would start one each.
 */
export const EXTENT_MAP_MIN_HOLES = 16 * 2 ** 20;

export interface DataExtent {
  off: number;
  len: number;
  /**
   * Preallocated space (fallocate) that the map says reads as zeros, though
   * data written into it may still sit in the page cache (ext4 converts such
   * an extent only when the write reaches the disk): the caller reads it.
   */
  unwritten?: true;
}

/**
 * File systems whose extent map is taken (ext2/3/4, xfs, btrfs). On others
 * filefrag may fall back to FIBMAP, where a block it cannot map (FUSE
 * without bmap) reads as a hole: a map that would leave data out.
 */
const MAPPED_FILE_SYSTEMS = new Set(['ef53', '58465342', '9123683e']);

/** Output beyond this is not an extent map worth having (the caller sends such a file whole). */
const MAX_OUTPUT = 4 * 2 ** 20;
const TIMEOUT_MS = 15_000;

/**
 * dataExtents of a file with at least EXTENT_MAP_MIN_HOLES of holes
 * (`allocated`: its allocated bytes, st_blocks × 512); null for a file with
 * fewer, where reading it costs less than starting filefrag.
 */
export async function extentsIfSparse(fd: number, size: number, allocated: number): Promise<DataExtent[] | null> {
  return size - allocated >= EXTENT_MAP_MIN_HOLES ? dataExtents(fd, size) : null;
}

/**
 * The byte ranges of `fd` (a regular file of `size` bytes) that may hold
 * data, in order, merged where they touch and cut at `size`; preallocated
 * ranges are marked `unwritten` (the caller reads them for zeros). Null
 * when the map cannot be had or trusted (no filefrag, a file system not in
 * MAPPED_FILE_SYSTEMS, a line that does not parse, a map that does not end
 * with the last extent, extents out of order, a delayed allocation): the
 * caller falls back to reading the whole file.
 */
export async function dataExtents(fd: number, size: number): Promise<DataExtent[] | null> {
  try {
    // -s: the file's dirty pages are written first, so that the map has no delayed allocations in it.
    const r = await exec('filefrag', ['-s', '-e', '/dev/fd/3'], { fds: [fd], timeoutMs: TIMEOUT_MS, maxOutput: MAX_OUTPUT });
    return parseFilefrag(r.stdout, size);
  } catch {
    return null; // not installed, no FIEMAP (tmpfs), a timeout, a map too long
  }
}

const HEADER = /^File size of \/dev\/fd\/3 is (\d+) \((\d+) blocks? of (\d+) bytes\)$/;
// "   0:        0..       2:    8286218..   8286220:      3:             last,eof" (expected and flags may be empty)
const EXTENT = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+\d+\.\.\s*\d+:\s+(\d+):\s*(?:\d+:)?\s*([a-z_,]*)\s*$/;

/** filefrag -e's output for /dev/fd/3 → data ranges; null for anything unexpected. Exported for the tests (recorded outputs). */
export function parseFilefrag(text: string, size: number): DataExtent[] | null {
  let block = 0;
  let mapped = false;
  let sawTable = false;
  let summary: number | undefined;
  let extents = 0;
  let last = false;
  const out: DataExtent[] = [];
  let end = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fs = /^Filesystem type is: ([0-9a-f]+)$/.exec(line);
    if (fs) {
      mapped = MAPPED_FILE_SYSTEMS.has(fs[1]!);
      continue;
    }
    const h = HEADER.exec(line);
    if (h) {
      if (Number(h[1]) !== size) return null; // the file changed size since the caller's fstat
      block = Number(h[3]);
      continue;
    }
    if (/^\s*ext:\s+logical_offset:/.test(line)) {
      sawTable = true;
      continue;
    }
    // "NAME: 4 extents found" (filefrag 1.47 prints a name of its own there, not always the path given;
    // the count is of physically separate pieces, not of the lines above): the last line.
    const sum = /: (\d+) extents? found$/.exec(line);
    if (sum) {
      if (summary !== undefined) return null;
      summary = Number(sum[1]);
      continue;
    }
    const m = EXTENT.exec(line);
    if (!m || !block || !sawTable || summary !== undefined || last) return null;
    extents++;
    const first = Number(m[1]);
    const lastBlock = Number(m[2]);
    const count = Number(m[3]);
    if (lastBlock - first + 1 !== count) return null; // a delayed allocation has no length yet
    const flags = m[4]!.split(',');
    last = flags.includes('last');
    const unwritten = flags.includes('unwritten');
    const off = first * block;
    const stop = Math.min(size, (lastBlock + 1) * block);
    if (!Number.isSafeInteger(stop) || off < end) return null;
    if (off >= stop) continue; // wholly past the end (preallocated beyond EOF)
    const prev = out[out.length - 1];
    if (prev && prev.off + prev.len === off && (prev.unwritten === true) === unwritten) prev.len += stop - off;
    else out.push(unwritten ? { off, len: stop - off, unwritten: true } : { off, len: stop - off });
    end = stop;
  }
  // The whole map was read: it ends with the extent the kernel marked last, or has none at all.
  if (!mapped || !block || summary === undefined) return null;
  return (extents === 0 && summary === 0) || (extents > 0 && last) ? out : null;
}
