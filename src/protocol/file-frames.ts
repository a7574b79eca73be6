// The frames of a file-level session (kind 'file'), in the range 0x50–0x6f
// that frames.ts reserves for it. After HELLO/WELCOME (frames.ts) the agent
// streams the pass's pax tar (see protocol/tar-format.ts) cut into
// FILE_DATA frames, each carrying its offset in the stream, its codec and
// the xxh64 of its raw bytes; FILE_COMMIT/FILE_ACK pace the stream and mark
// what the receiver has made durable; FILE_HASH_REQUEST/FILE_HASHES fetch the
// piece hashes of the receiver's copy of a large file; FILE_END/FILE_DONE
// close the pass with both sides' digest of the stream.
//
//   FILE_DATA          u64 offset | u32 rawLength | u8 codec | u8 0 | u16 0 | u64 xxh64(raw) | payload
//   FILE_COMMIT        JSON { id, offset }             agent → receiver
//   FILE_ACK           JSON { id, offset, entries }    receiver → agent, after fsync
//   FILE_HASH_REQUEST  JSON { id, path (base64) }      agent → receiver
//   FILE_HASHES        u32 id | u8 found | u64 xxh64 per 64 KiB piece
//   FILE_END           JSON { offset, digest }         agent → receiver
//   FILE_DONE          JSON { digest, entries, deleted, bytesWritten }
//
// WELCOME's kindState carries, for a file target: lastPassId (the last pass
// the receiver completed), and, when the same passId reconnects,
// resumeAfter (base64 of the last path it made durable).

import { FerryError } from '../errors/ferry-error.js';
import { Codec, encodeFrame, MAX_DATA_RAW_BYTES, MAX_FRAME_BYTES, type CodecValue } from './frames.js';

export const FileFrameType = {
  FILE_DATA: 0x50,
  FILE_COMMIT: 0x51,
  FILE_ACK: 0x52,
  FILE_HASH_REQUEST: 0x53,
  FILE_HASHES: 0x54,
  FILE_END: 0x55,
  FILE_DONE: 0x56,
} as const;

// The JSON bodies' schemas live in frame-schemas.ts (zod/mini, bundled at
// build time: importing zod here cost every file pass's start-up all of zod).
export {
  FileAckSchema,
  FileCommitSchema,
  FileDoneSchema,
  FileEndSchema,
  FileHashRequestSchema,
  FileWelcomeStateSchema,
  type FileAck,
  type FileCommit,
  type FileDone,
  type FileEnd,
  type FileHashRequest,
  type FileWelcomeState,
} from './frame-schemas.js';

export const FILE_DATA_HEADER_BYTES = 8 + 4 + 1 + 1 + 2 + 8;

export interface FileDataFrame {
  offset: number;
  rawLength: number;
  codec: CodecValue;
  hash: bigint;
  payload: Buffer;
}

export function encodeFileData(f: FileDataFrame): Buffer {
  const [head, payload] = encodeFileDataParts(f);
  return Buffer.concat([head, payload]);
}

/**
 * The same frame as encodeFileData, as its header and the payload itself
 * (for FrameChannel.send's list of parts): no copy of the payload. Measured
 * (issue 14, full file pass of a /usr tree): the copy was one more 1 MiB
 * allocation per frame through malloc, on top of the slice and lz4's output.
 */
export function encodeFileDataParts(f: FileDataFrame): [Buffer, Buffer] {
  const bodyLen = FILE_DATA_HEADER_BYTES + f.payload.length;
  if (1 + bodyLen > MAX_FRAME_BYTES) throw new FerryError('FERRY_FRAME_TOO_LARGE', `FILE_DATA frame of ${1 + bodyLen} bytes exceeds the cap`);
  const out = Buffer.allocUnsafe(5 + FILE_DATA_HEADER_BYTES);
  out.writeUInt32BE(1 + bodyLen, 0);
  out[4] = FileFrameType.FILE_DATA;
  out.writeBigUInt64BE(BigInt(f.offset), 5);
  out.writeUInt32BE(f.rawLength, 13);
  out[17] = f.codec;
  out[18] = 0;
  out.writeUInt16BE(0, 19);
  out.writeBigUInt64BE(f.hash, 21);
  return [out, f.payload];
}

export function decodeFileData(body: Buffer): FileDataFrame {
  if (body.length < FILE_DATA_HEADER_BYTES) throw new FerryError('FERRY_FRAME_MALFORMED', 'FILE_DATA frame shorter than its header');
  const codec = body[12]!;
  const rawLength = body.readUInt32BE(8);
  if (codec !== Codec.RAW && codec !== Codec.LZ4) throw new FerryError('FERRY_FRAME_MALFORMED', `FILE_DATA frame with unknown codec ${codec}`);
  if (rawLength === 0 || rawLength > MAX_DATA_RAW_BYTES) throw new FerryError('FERRY_FRAME_MALFORMED', `FILE_DATA raw length ${rawLength} out of range`);
  const payload = body.subarray(FILE_DATA_HEADER_BYTES);
  if (codec === Codec.RAW && payload.length !== rawLength) throw new FerryError('FERRY_FRAME_MALFORMED', 'FILE_DATA raw payload length does not match');
  return { offset: Number(body.readBigUInt64BE(0)), rawLength, codec: codec as CodecValue, hash: body.readBigUInt64BE(16), payload };
}

export function encodeFileHashes(id: number, hashes: Buffer | null): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(id, 0);
  head[4] = hashes ? 1 : 0;
  return encodeFrame(FileFrameType.FILE_HASHES, hashes ? Buffer.concat([head, hashes]) : head);
}

export function decodeFileHashes(body: Buffer): { id: number; hashes: Buffer | null } {
  if (body.length < 5 || (body.length - 5) % 8 !== 0) throw new FerryError('FERRY_FRAME_MALFORMED', 'FILE_HASHES frame has a bad length');
  return { id: body.readUInt32BE(0), hashes: body[4] ? body.subarray(5) : null };
}
