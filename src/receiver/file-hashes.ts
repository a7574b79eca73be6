// Answers a file session's FILE_HASH_REQUEST: the piece hashes of the
// receiver's copy of a regular file under the target root, or null when
// there is none to compare with. The path comes from the peer, so nothing
// here may block the event loop: the entry is lstat'ed first (a FIFO, a
// device or a symlink is answered null without being opened), opened with
// O_NONBLOCK|O_NOFOLLOW in case it changed since, checked again on the open
// descriptor, and read asynchronously (a sparse copy's holes are not read:
// its extent map says where they are). Reads only; owns nothing.

import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { extentsIfSparse } from '../platform/file-extents.js';
import { MAX_FRAME_BYTES } from '../protocol/frames.js';
import { PIECE, pieceHashesOfHandle } from '../protocol/file-pieces.js';
import { absPath } from '../protocol/paths.js';
import { assertRealParents, checkRelPath } from './file-extractor.js';

/** Largest file whose piece hashes fit one frame; bigger ones are sent whole. */
export const MAX_HASHED_BYTES = Math.floor((MAX_FRAME_BYTES - 16) / 8) * PIECE;

/** Piece hashes of root/rel when it is a regular file of at most MAX_HASHED_BYTES; null otherwise. */
export async function receiverPieceHashes(root: Buffer, rel: Buffer): Promise<Buffer | null> {
  let abs: Buffer;
  try {
    const p = checkRelPath(rel);
    assertRealParents(root, p);
    abs = absPath(root, p);
  } catch {
    return null;
  }
  const before = await lstat(abs).catch(() => null);
  if (!before?.isFile() || before.size > MAX_HASHED_BYTES) return null;
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => null);
  if (!fh) return null;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_HASHED_BYTES) return null;
    // A sparse copy's holes hash as zeros unread (its extent map; null = read it all).
    return await pieceHashesOfHandle(fh, st.size, await extentsIfSparse(fh.fd, st.size, st.blocks * 512));
  } finally {
    await fh.close().catch(() => {});
  }
}
