// The receiver's file-level session kind: takes a pass's FILE_* frames
// (protocol/file-frames.ts), checks each frame's hash, decompresses
// it and feeds the tar stream to the file extractor for the target
// directory. FILE_COMMITs are acknowledged once their bytes reach the
// extractor (flow control); every few seconds, in the background, it syncs
// the target file system and then records the last entry that was in place
// before the sync (the durable resume point of this pass). At FILE_END it
// checks the stream digest, answers FILE_DONE, then syncs and records the
// pass as complete (a new session for the target waits for that). It
// answers FILE_HASH_REQUEST with the piece hashes of its copy of a file
// (file-hashes.ts). The target root is opened once and pinned for the whole
// session: everything goes through that descriptor (see file-extractor.ts).
// Owns DIR/targets/NAME/file-state.json and the target tree; nothing else.

import { closeSync, constants, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { fdPath } from '../platform/fd-path.js';
import { join } from 'node:path';
import { z } from 'zod';
import { FerryError, errorMessage } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../platform/atomic-file.js';
import { syncFileSystem } from '../platform/sync-fs.js';
import { hasher } from '../protocol/xxhash.js';
import { lz4Decompress } from '../protocol/lz4-block.js';
import { Codec, decodeJson, encodeJsonFrame, frameTypeName, type RawFrame } from '../protocol/frames.js';
import {
  FileCommitSchema, FileEndSchema, FileFrameType, FileHashRequestSchema, decodeFileData, encodeFileHashes,
  type FileAck, type FileDone, type FileWelcomeState,
} from '../protocol/file-frames.js';
import { ByteQueue } from './byte-queue.js';
import { receiveBuffers } from './receive-buffers.js';
import { FileExtractor } from './file-extractor.js';
import { receiverPieceHashes } from './file-hashes.js';
import type { KindSession, SessionContext, SessionKindHandler } from './session-kind.js';

const FileStateSchema = z.object({
  lastPassId: z.string().optional(),
  current: z.object({ passId: z.string(), resumeAfter: z.string().optional() }).optional(),
});
type FileState = z.infer<typeof FileStateSchema>;

/** How often the receiver makes its resume point durable (sync + state file). */
const CHECKPOINT_EVERY_MS = 5_000;
/**
 * Tar bytes queued for the extractor before the socket is paused (and resumed under LOW_WATER). Measured
 * (2026-12-06, main at 86bbc06, `npm run bench system`, two file sessions at once under `--parallel 2`): with
 * 32 / 8 MiB both queues sat full at the receiver's peak, 228 MB; with 12 / 4 MiB 176 MB, wall times within
 * the noise; one /usr session alone (file-full-usr.sh, 2 pairs) 8.16 / 8.14 s against 8.46 / 8.06 s.
 */
const HIGH_WATER = 12 * 1024 * 1024;
const LOW_WATER = 4 * 1024 * 1024;

function loadState(path: string): FileState {
  try {
    return FileStateSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new FerryError('FERRY_STATE_CORRUPT', `${path}: ${errorMessage(e)}`);
  }
}

export const fileKind: SessionKindHandler = {
  async open(ctx: SessionContext): Promise<KindSession> {
    const root = ctx.target.path;
    mkdirSync(root, { recursive: true });
    if (!statSync(root).isDirectory()) throw new FerryError('FERRY_BAD_TARGET', `target ${ctx.target.name} (${root}) is not a directory`);
    const stateDir = join(ctx.dataDir, 'targets', ctx.target.name);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const statePath = join(stateDir, 'file-state.json');
    const state = loadState(statePath);
    const passId = ctx.hello.passId;
    const kindState: FileWelcomeState = {};
    if (state.lastPassId) kindState.lastPassId = state.lastPassId;
    if (state.current?.passId === passId && state.current.resumeAfter !== undefined) kindState.resumeAfter = state.current.resumeAfter;
    state.current = { passId, ...(kindState.resumeAfter !== undefined ? { resumeAfter: kindState.resumeAfter } : {}) };
    await writeFileAtomic(statePath, JSON.stringify(state), { mode: 0o600 });
    // Pinned from here on: whatever later happens to the path, this session works in the directory opened now.
    const rootFd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
    let session: FileSession;
    try {
      session = new FileSession(ctx, rootFd, statePath, state);
    } catch (e) {
      closeSync(rootFd);
      throw e;
    }
    return {
      welcome: { pass: state.lastPassId ? 'delta' : 'full', resumeFrom: 0, kindState },
      onFrame: (f) => session.onFrame(f),
      close: (reason) => session.close(reason),
    };
  },
};

class FileSession {
  /** The pinned root as a path (/proc/PID/fd/N/: it resolves through the open descriptor, also for child processes). */
  private readonly root: string;
  private rootFd: number;
  private readonly queue: ByteQueue;
  private readonly extractor: FileExtractor;
  private readonly extracting: Promise<unknown>;
  private expectedOffset = 0;
  private lastPath: Buffer | null = null;
  private entries = 0;
  private chain: Promise<void> = Promise.resolve();
  private digest: { update(b: Uint8Array): unknown; digest(): bigint } | null = null;
  private h64Raw: ((b: Uint8Array) => bigint) | null = null;
  private failed = false;
  private finished = false;
  private lastCheckpoint = Date.now();
  private checkpointing: Promise<void> | null = null;
  private finalizing: Promise<void> | null = null;

  constructor(
    private readonly ctx: SessionContext,
    rootFd: number,
    private readonly statePath: string,
    private readonly state: FileState,
  ) {
    this.rootFd = rootFd;
    this.root = fdPath(rootFd, true);
    const channel = ctx.channel;
    this.queue = new ByteQueue(HIGH_WATER, LOW_WATER, (paused) => (paused ? channel.pauseReading('tar-queue') : channel.resumeReading('tar-queue')));
    this.extractor = new FileExtractor({
      root: ctx.target.path,
      rootFd,
      name: ctx.target.name,
      log: ctx.log,
      onEntry: (i, p) => {
        this.entries = i + 1;
        this.lastPath = p;
      },
    });
    this.extracting = this.extractor.extract(this.queue).catch((e: unknown) => {
      this.fail(e);
      throw e;
    });
    this.extracting.catch(() => {});
    // Frames are handled in order; the hasher is loaded before the first one is decoded.
    this.chain = hasher().then((api) => {
      this.h64Raw = api.h64Raw;
      this.digest = api.create64();
    });
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.queue.fail(e instanceof Error ? e : new Error(String(e)));
    this.ctx.fail(e);
  }

  onFrame(frame: RawFrame): void {
    if (this.failed) return;
    if (frame.type === FileFrameType.FILE_DATA) {
      // Data is decoded synchronously once the hasher is there, so the queue sees frames in order.
      if (this.h64Raw) this.data(frame);
      else this.chain = this.chain.then(() => this.data(frame));
      return;
    }
    this.chain = this.chain.then(() => this.control(frame)).catch((e: unknown) => this.fail(e));
  }

  /**
   * Checks and decodes one FILE_DATA frame and queues its raw bytes for the extractor. Neither the frame nor the
   * decoded bytes get a fresh buffer: the frame was gathered into a pooled one (receive-buffers.ts), given back
   * as soon as it is decoded (or, sent raw, once the extractor is done with its bytes), and LZ4 decodes into
   * another, given back by the queue once the tar parser has moved past it (byte-queue.ts). Measured
   * (2026-12-06, /usr tree full pass): the two fresh 1 MiB buffers per frame drove V8's full garbage
   * collections through its external-memory accounting and page faults on every fresh buffer; see
   * docs/file-replication.md, "The receiver's CPU on a full pass".
   */
  private data(frame: RawFrame): void {
    /** What to give back once the bytes in hand are no longer needed (set before anything can throw). */
    let release = frame.release;
    try {
      const f = decodeFileData(frame.body);
      if (f.offset !== this.expectedOffset) throw new FerryError('FERRY_FRAME_UNEXPECTED', `FILE_DATA at offset ${f.offset}, expected ${this.expectedOffset}`);
      let raw = f.payload;
      if (f.codec === Codec.LZ4) {
        // protocol/lz4-block.ts (not lz4-napi, which leaks native memory per call); it checks the size prefix too.
        const into = f.rawLength <= receiveBuffers.slotBytes ? receiveBuffers.take() : undefined;
        try {
          raw = lz4Decompress(f.payload, f.rawLength, into);
        } catch (e) {
          if (into) receiveBuffers.give(into);
          throw e;
        }
        // The compressed bytes are done with; from here on the decoded ones are what is held.
        frame.release?.();
        release = into ? receiveBuffers.releaser(into) : undefined;
      }
      if (raw.length !== f.rawLength || this.h64Raw!(raw) !== f.hash) {
        throw new FerryError('FERRY_CHUNK_HASH', `FILE_DATA at offset ${f.offset} failed its hash check (corrupted in transit)`);
      }
      this.digest!.update(raw);
      this.expectedOffset += raw.length;
      this.queue.push(raw, release);
    } catch (e) {
      release?.();
      this.fail(e);
    }
  }

  private async control(frame: RawFrame): Promise<void> {
    const send = (type: number, v: unknown) => this.ctx.channel.send(encodeJsonFrame(type, v));
    switch (frame.type) {
      case FileFrameType.FILE_COMMIT: {
        // Flow control: acknowledge once everything before the offset is in the extractor's hands.
        // Durability of the resume point is a separate, slower checkpoint (see checkpoint()).
        const c = decodeJson(FileCommitSchema, frame.type, frame.body);
        await this.handedOver(c.offset);
        const ack: FileAck = { id: c.id, offset: c.offset, entries: this.entries };
        await send(FileFrameType.FILE_ACK, ack);
        if (Date.now() - this.lastCheckpoint >= CHECKPOINT_EVERY_MS) void this.checkpoint();
        return;
      }
      case FileFrameType.FILE_HASH_REQUEST: {
        const r = decodeJson(FileHashRequestSchema, frame.type, frame.body);
        await this.ctx.channel.send(encodeFileHashes(r.id, await receiverPieceHashes(Buffer.from(this.root), Buffer.from(r.path, 'base64'))));
        return;
      }
      case FileFrameType.FILE_END: {
        const end = decodeJson(FileEndSchema, frame.type, frame.body);
        if (end.offset !== this.expectedOffset) throw new FerryError('SMS.0805', `FILE_END at offset ${end.offset} but ${this.expectedOffset} bytes arrived`);
        this.queue.end();
        await this.extracting;
        await this.checkpointing;
        this.finished = true;
        const digest = this.digest!.digest().toString(16).padStart(16, '0');
        if (digest !== end.digest) throw new FerryError('SMS.0805', `stream digest mismatch: agent ${end.digest}, receiver ${digest}`);
        const s = this.extractor.stats;
        const done: FileDone = { digest, entries: s.entries, deleted: s.deleted, bytesWritten: s.bytesWritten };
        // The pass counts as complete (lastPassId, which lets the agent send a
        // delta next time) only once the target is synced. DONE goes out first:
        // if this receiver dies before the sync, the next pass is a full one.
        const passId = this.ctx.hello.passId;
        this.finalizing = (async () => {
          // Started once FILE_DONE is written (send below writes it within this turn's microtasks): where the
          // sync helper cannot run, syncFileSystem spawns `sync`, 8–18 ms of this thread the agent would wait for too.
          await new Promise<void>((r) => setImmediate(r));
          await this.syncTarget();
          this.state.lastPassId = passId;
          delete this.state.current;
          await writeFileAtomic(this.statePath, JSON.stringify(this.state), { mode: 0o600 });
          this.ctx.log.info({ entries: s.entries, deleted: s.deleted }, 'file pass complete');
        })();
        this.finalizing.catch((e: unknown) => this.ctx.log.error({ err: errorMessage(e) }, 'could not make the completed pass durable; the next pass will be full'));
        await send(FileFrameType.FILE_DONE, done);
        return;
      }
      default:
        throw new FerryError('FERRY_FRAME_UNEXPECTED', `${frameTypeName(frame.type)} frame in a file session`);
    }
  }

  /**
   * Makes the resume point durable: notes the last entry in place, syncs the
   * target file system, then records that entry as the point after which a
   * reconnecting agent resumes. Runs in the background, one at a time.
   */
  private checkpoint(): Promise<void> {
    if (this.checkpointing) return this.checkpointing;
    this.lastCheckpoint = Date.now();
    const last = this.lastPath;
    this.checkpointing = (async () => {
      try {
        await this.syncTarget();
        if (last !== null && !this.finished) {
          this.state.current = { passId: this.ctx.hello.passId, resumeAfter: last.toString('base64') };
          await writeFileAtomic(this.statePath, JSON.stringify(this.state), { mode: 0o600 });
        }
      } catch (e) {
        this.ctx.log.warn({ err: errorMessage(e) }, 'checkpoint failed; the resume point stays where it was');
      } finally {
        this.checkpointing = null;
      }
    })();
    return this.checkpointing;
  }

  private async handedOver(offset: number): Promise<void> {
    if (offset > this.expectedOffset) throw new FerryError('FERRY_FRAME_UNEXPECTED', `FILE_COMMIT at ${offset} beyond the ${this.expectedOffset} bytes received`);
    await Promise.race([this.queue.handedOver(offset), this.extracting.then(() => {})]);
  }

  private async syncTarget(): Promise<void> {
    // Through one long-lived small helper: a fork of this (large, busy) process per commit cost far more than the flush.
    await syncFileSystem(this.root, 600_000);
  }

  async close(reason: Error): Promise<void> {
    this.queue.fail(reason);
    await this.extracting.catch(() => {});
    await this.checkpointing;
    await this.finalizing?.catch(() => {});
    if (this.rootFd >= 0) closeSync(this.rootFd);
    this.rootFd = -1;
  }
}
