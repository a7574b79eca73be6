// Fixed-offset pieces of large files. A changed file over the large-file
// threshold is compared piece by piece against the receiver's copy (xxh64
// per 64 KiB piece, 8 bytes big-endian each) and only differing pieces are
// sent — databases and VM images change in place, so offsets are stable.
// Also finds the data ranges of sparse files (from the extent map, or
// all-zero 4 KiB blocks are holes). Both sides use this file; it writes
// nothing (the extent map's `filefrag -s` writes the file's dirty pages out).

import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { extentsIfSparse } from '../platform/file-extents.js';
import { hasher } from './xxhash.js';

export const PIECE = 64 * 1024;
export const LARGE_FILE = 8 * 1024 * 1024;
const IO = 4 * 1024 * 1024;
const HOLE_GRAIN = 4096;
/** More data ranges than this and a sparse file is sent whole (its pax map would be too large). */
export const MAX_RANGES = 16_384;

export interface Range {
  off: number;
  len: number;
}

/**
 * xxh64 of each PIECE of the file at fd, up to `size` bytes. With `data` (the
 * file's data ranges in order, platform/file-extents.ts: preallocated ones
 * included, as they are read), every stretch of pieces outside them is a
 * hole and hashes as zeros without being read: a 40 GiB sparse image with
 * 1 GiB of data costs a read of 1 GiB, on each side.
 */
export async function pieceHashes(fd: number, size: number, data?: readonly Range[] | null): Promise<Buffer> {
  return hashPieces(size, async (buf, want, pos) => readFull(fd, buf, want, pos), data ?? null);
}

/**
 * The same, reading through a FileHandle: the receiver answers a peer's
 * request with this, so the event loop never waits on the disk for it.
 */
export async function pieceHashesOfHandle(fh: FileHandle, size: number, data?: readonly Range[] | null): Promise<Buffer> {
  return hashPieces(
    size,
    async (buf, want, pos) => {
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got;
    },
    data ?? null,
  );
}

async function hashPieces(size: number, read: (buf: Buffer, want: number, pos: number) => Promise<number>, data: readonly Range[] | null): Promise<Buffer> {
  const { h64Raw } = await hasher();
  const n = Math.ceil(size / PIECE);
  const out = Buffer.alloc(n * 8);
  const buf = Buffer.allocUnsafe(Math.min(IO, Math.max(size, 1)));
  let zeroHash: bigint | undefined;
  let piece = 0;
  let next = 0; // the first data range that may still reach [pos, …)
  for (let pos = 0; pos < size; ) {
    const want = Math.min(buf.length, size - pos);
    if (data) {
      while (next < data.length && data[next]!.off + data[next]!.len <= pos) next++;
      const r = data[next];
      if (!r || r.off >= pos + want) {
        // A hole: every piece reads as zeros (the last one, short, hashed at its length).
        for (let o = 0; o < want; o += PIECE) {
          const len = Math.min(want, o + PIECE) - o;
          const h = len === PIECE ? (zeroHash ??= h64Raw(new Uint8Array(PIECE))) : h64Raw(new Uint8Array(len));
          out.writeBigUInt64BE(h, piece * 8);
          piece++;
        }
        pos += want;
        continue;
      }
    }
    const got = await read(buf, want, pos);
    for (let o = 0; o < got; o += PIECE) {
      out.writeBigUInt64BE(h64Raw(buf.subarray(o, Math.min(got, o + PIECE))), piece * 8);
      piece++;
    }
    if (got < want) break;
    pos += got;
  }
  return out.subarray(0, piece * 8);
}

export function readFull(fd: number, buf: Buffer, len: number, pos: number): number {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** Ranges (merged) whose pieces differ between local hashes and the receiver's. */
export function changedRanges(local: Buffer, remote: Buffer, size: number): Range[] {
  const out: Range[] = [];
  const n = local.length / 8;
  for (let i = 0; i < n; i++) {
    const same = i * 8 + 8 <= remote.length && local.compare(remote, i * 8, i * 8 + 8, i * 8, i * 8 + 8) === 0;
    if (same) continue;
    const off = i * PIECE;
    const len = Math.min(PIECE, size - off);
    const last = out[out.length - 1];
    if (last && last.off + last.len === off) last.len += len;
    else out.push({ off, len });
  }
  return out;
}

const ZERO = Buffer.alloc(HOLE_GRAIN);

/** Data ranges of a file with holes, of its bytes from `from` to `size`; null when there are too many to list (send it dense). */
export function dataRanges(fd: number, size: number, from = 0): Range[] | null {
  const out: Range[] = [];
  const buf = Buffer.allocUnsafe(Math.min(IO, Math.max(HOLE_GRAIN, size - from)));
  for (let pos = from; pos < size; ) {
    const got = readFull(fd, buf, Math.min(buf.length, size - pos), pos);
    if (got === 0) break;
    for (let o = 0; o < got; o += HOLE_GRAIN) {
      const end = Math.min(got, o + HOLE_GRAIN);
      const zero = ZERO.compare(buf, o, end, 0, end - o) === 0;
      if (zero) continue;
      const off = pos + o;
      const last = out[out.length - 1];
      if (last && last.off + last.len === off) last.len += end - o;
      else {
        if (out.length >= MAX_RANGES) return null;
        out.push({ off, len: end - o });
      }
    }
    pos += got;
  }
  return out;
}

export function formatRanges(r: Range[]): string {
  return r.map((x) => `${x.off}+${x.len}`).join(',');
}

export function parseRanges(s: string, size: number, where: string): Range[] {
  if (s === '') return [];
  const out: Range[] = [];
  let end = 0;
  for (const part of s.split(',')) {
    const m = /^(\d+)\+(\d+)$/.exec(part);
    if (!m) throw new Error(`${where}: malformed range map`);
    const off = Number(m[1]);
    const len = Number(m[2]);
    if (off < end || off + len > size || !Number.isSafeInteger(off + len)) throw new Error(`${where}: range map out of order or past the file size`);
    end = off + len;
    out.push({ off, len });
  }
  return out;
}

/**
 * A sparse file's data ranges: from its extent map where it has many holes
 * (none of them read; its preallocated ranges are read for zeros, since data
 * written into them may not be converted yet), else by reading it for zeros;
 * null = send it whole.
 */
export async function sparseRanges(fd: number, size: number, allocated: number): Promise<Range[] | null> {
  const mapped = await extentsIfSparse(fd, size, allocated);
  if (!mapped) return dataRanges(fd, size);
  const out: Range[] = [];
  for (const x of mapped) {
    const parts = x.unwritten ? dataRanges(fd, x.off + x.len, x.off) : [x];
    if (!parts) return null;
    for (const p of parts) {
      const prev = out[out.length - 1];
      if (prev && prev.off + prev.len === p.off) prev.len += p.len;
      else out.push({ off: p.off, len: p.len });
    }
    if (out.length > MAX_RANGES) return null;
  }
  return out;
}
