// The schemas of the block-level control frames (HELLO, WELCOME, ERROR,
// MANIFEST_REQUEST, COMMIT, ACK, NACK, END, DONE) and of the file-level
// session's JSON frames (FILE_COMMIT, FILE_ACK, FILE_HASH_REQUEST, FILE_END,
// FILE_DONE, WELCOME's file kindState): the single source of truth for their
// JSON bodies. frames.ts and file-frames.ts re-export them and own the frame
// layouts; this file owns only the schemas and must import nothing but
// zod/mini and errors/ (the build bundles it, see below).
//
// Why zod/mini and a bundle (issue 14, measured Dec 6 on the 2-core VM,
// `node -e "await import(…)"`, min of 7): every `ferry migrate` loads these
// schemas before its first read. `import('zod')` is 95 ES modules and took
// 108–220 ms; `import('zod/mini')` unbundled as much (77–83 ms: it loads the
// same core); the same schemas written with zod/mini and bundled by esbuild
// with tree shaking are one 46 KB file that loads in 7–16 ms.
// scripts/bundle-frame-schemas.mjs does that after tsc (npm run build,
// packaging/build.sh); tests and tsc read this file as it is. The same
// library and the same checks as before, so the messages are zod's own
// (English locale, configured below: zod/mini leaves messages empty without it).

import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { RECOVERIES } from '../errors/codes.js';

z.config(en());

export const PROTOCOL_NAME = 'ferry';

const positiveInt = () => z.number().check(z.int(), z.positive());
const nonnegativeInt = () => z.number().check(z.int(), z.nonnegative());
const text = (min: number | undefined, max: number) => (min === undefined ? z.string().check(z.maxLength(max)) : z.string().check(z.minLength(min), z.maxLength(max)));

export const SessionKind = z.enum(['block', 'file', 'system']);
export type SessionKind = z.infer<typeof SessionKind>;

export const HelloSchema = z.object({
  protocol: z.literal(PROTOCOL_NAME),
  version: positiveInt(),
  token: text(1, 512),
  kind: SessionKind,
  target: text(1, 256),
  /** A pass id the agent keeps across reconnects of one pass (resume). */
  passId: text(8, 64),
  /** block: source volume size in bytes; chunk size the agent proposes. */
  sizeBytes: z.optional(nonnegativeInt()),
  chunkSize: z.optional(positiveInt()),
  agent: z.optional(text(undefined, 128)),
});
export type Hello = z.infer<typeof HelloSchema>;

export const WelcomeSchema = z.object({
  version: positiveInt(),
  kind: SessionKind,
  target: z.string(),
  sessionId: z.string(),
  /** block: the chunk size the receiver's manifest uses (the agent must follow). */
  chunkSize: z.optional(positiveInt()),
  targetBytes: z.optional(nonnegativeInt()),
  /** 'delta' when the receiver already holds a completed pass for this target. */
  pass: z.enum(['full', 'delta']),
  /** Offset below which this pass (same passId) is already committed: resume there. */
  resumeFrom: nonnegativeInt(),
  maxFrameBytes: positiveInt(),
  /** Kind-specific resume state (file kind: FileWelcomeStateSchema below). */
  kindState: z.optional(z.record(z.string(), text(undefined, 16384))),
});
export type Welcome = z.infer<typeof WelcomeSchema>;

export const ErrorFrameSchema = z.object({
  code: text(undefined, 64),
  message: text(undefined, 4096),
  /** Fatal errors end the session; the receiver closes the connection after sending one. */
  fatal: z.boolean(),
  /**
   * Whether the agent may reconnect and try again ('retryable'), or not
   * ('fatal', 'permanent'): see errors/codes.ts. Receivers before this field
   * did not send it; the agent then goes by the code.
   */
  recovery: z.optional(z.enum(RECOVERIES)),
});
export type ErrorFrame = z.infer<typeof ErrorFrameSchema>;

export const ManifestRequestSchema = z.object({
  first: nonnegativeInt(),
  count: z.number().check(z.int(), z.positive(), z.maximum(256 * 1024)),
});
export type ManifestRequest = z.infer<typeof ManifestRequestSchema>;

export const CommitSchema = z.object({
  id: nonnegativeInt(),
  /** Every chunk below this offset was scanned and its frames sent before this COMMIT. */
  frontier: nonnegativeInt(),
});
export type Commit = z.infer<typeof CommitSchema>;

export const AckSchema = z.object({
  id: nonnegativeInt(),
  /** The frontier the receiver persisted (agent frontier, lowered below rejected frames). */
  frontier: nonnegativeInt(),
});
export type Ack = z.infer<typeof AckSchema>;

export const NackSchema = z.object({
  seq: nonnegativeInt(),
  code: text(undefined, 64),
  message: text(undefined, 1024),
});
export type Nack = z.infer<typeof NackSchema>;

export const EndSchema = z.object({
  /** sha256 (hex) over the canonical hashes of every chunk of the volume, in order. */
  digest: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
  sizeBytes: nonnegativeInt(),
  verify: z.boolean(),
});
export type End = z.infer<typeof EndSchema>;

export const DoneSchema = z.object({
  digest: z.string(),
  verified: z.boolean(),
  /** Chunks whose target content did not match the manifest on re-read (verify only). */
  mismatchedChunks: nonnegativeInt(),
});
export type Done = z.infer<typeof DoneSchema>;

// ---------------------------------------------------------------- file-level frames (file-frames.ts)
//
// Here and not in file-frames.ts (issue 14, measured Dec 6): written there
// with zod's classic API they made every `ferry migrate --files` import all
// of zod (95 ES modules, 119–357 ms on the 2-core VM, min/max of 7 loads) on
// top of this bundle; a delta pass of a /usr tree takes about 2 s.

export const FileCommitSchema = z.object({ id: nonnegativeInt(), offset: nonnegativeInt() });
export type FileCommit = z.infer<typeof FileCommitSchema>;

export const FileAckSchema = z.object({
  id: nonnegativeInt(),
  offset: nonnegativeInt(),
  entries: nonnegativeInt(),
});
export type FileAck = z.infer<typeof FileAckSchema>;

export const FileHashRequestSchema = z.object({ id: nonnegativeInt(), path: z.string().check(z.maxLength(8192)) });
export type FileHashRequest = z.infer<typeof FileHashRequestSchema>;

export const FileEndSchema = z.object({ offset: nonnegativeInt(), digest: z.string().check(z.regex(/^[0-9a-f]{16}$/)) });
export type FileEnd = z.infer<typeof FileEndSchema>;

export const FileDoneSchema = z.object({
  digest: z.string(),
  entries: nonnegativeInt(),
  deleted: nonnegativeInt(),
  bytesWritten: nonnegativeInt(),
});
export type FileDone = z.infer<typeof FileDoneSchema>;

/** WELCOME.kindState for a file target. */
export const FileWelcomeStateSchema = z.object({
  lastPassId: z.optional(z.string()),
  resumeAfter: z.optional(z.string()),
});
export type FileWelcomeState = z.infer<typeof FileWelcomeStateSchema>;
