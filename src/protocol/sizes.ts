// The sizes both ends of the wire agree on, defined once: the frame cap, the
// largest raw payload of a DATA or FILE_DATA frame, the largest run a sender
// puts in one frame, the default and allowed chunk sizes, and the buffer
// slot sizes the receiver pools from. The slot sizes are derived from the
// run size, and checked when this module loads, so that changing one
// constant cannot silently make frames miss the receive pool or payloads
// miss the aligned pool (and with it direct I/O).
//
// Must not touch: sockets, files, buffers themselves (only their sizes).

const KiB = 1024;
const MiB = 1024 * KiB;

/** Hard cap on a frame's length field (type + body). Larger frames are refused unread. */
export const MAX_FRAME_BYTES = 4 * MiB;

/**
 * Cap on a frame's length field before the receiver has accepted HELLO: an
 * unauthenticated peer may make the receiver buffer a HELLO, nothing bigger
 * (a HELLO is well under 2 KiB: see HelloSchema's field limits in frames.ts).
 */
export const MAX_HELLO_FRAME_BYTES = 64 * KiB;

/** The most raw (uncompressed) bytes one DATA or FILE_DATA frame may carry: what a receiver accepts. */
export const MAX_DATA_RAW_BYTES = 2 * MiB;

/**
 * The most raw bytes a sender puts in one frame (a block run of changed
 * chunks, a file stream slice): half of what the wire allows, so that a
 * whole frame fits one receive slot and its payload one aligned slot.
 */
export const DATA_RUN_BYTES = MAX_DATA_RAW_BYTES / 2;

/** The longest run one ZERO frame may cover: the agent never sends more, a receiver's session refuses more. */
export const MAX_ZERO_RUN_BYTES = 256 * MiB;

/** Block chunk size (the grain of hashing and deltas) a receiver with no manifest yet proposes. */
export const DEFAULT_CHUNK_SIZE = 32 * KiB;
/** Chunk sizes are powers of two in [MIN_CHUNK_SIZE, MAX_CHUNK_SIZE]. */
export const MIN_CHUNK_SIZE = 4 * KiB;
export const MAX_CHUNK_SIZE = DATA_RUN_BYTES;

/** Frame length prefix, type byte and the DATA header before the chunk hashes (see frames.ts). */
const DATA_FRAME_OVERHEAD = 5 + 20;

/**
 * A receive slot holds one whole incoming frame carrying DATA_RUN_BYTES:
 * header, one hash per chunk of the smallest size, and the LZ4 worst case
 * (a 4-byte size prefix, then n + n/255 + 16) all fit in the 64 KiB of headroom.
 */
export const RECEIVE_SLOT_BYTES = DATA_RUN_BYTES + 64 * KiB;

/** An aligned slot holds one decoded DATA payload, written from with direct I/O. */
export const ALIGNED_SLOT_BYTES = DATA_RUN_BYTES;

/** An LZ4 payload of n raw bytes at worst (size prefix and LZ4_compressBound, as lz4-block.ts writes it). */
function lz4WorstCase(n: number): number {
  return 4 + n + Math.floor(n / 255) + 16;
}

// Checked once at load: a violation is a programming error in this file, not bad input.
if (DATA_RUN_BYTES > MAX_DATA_RAW_BYTES) throw new Error('sizes: a sender run exceeds the raw payload the wire allows');
if (DATA_FRAME_OVERHEAD + 8 * (DATA_RUN_BYTES / MIN_CHUNK_SIZE) + lz4WorstCase(DATA_RUN_BYTES) > RECEIVE_SLOT_BYTES) {
  throw new Error('sizes: a frame carrying a whole run no longer fits a receive slot (pooling would be lost)');
}
if (ALIGNED_SLOT_BYTES < DATA_RUN_BYTES || ALIGNED_SLOT_BYTES % (4 * KiB) !== 0) {
  throw new Error('sizes: a decoded run no longer fits an aligned slot (direct I/O would be lost)');
}
