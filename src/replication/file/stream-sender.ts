// The file sender: cuts the producer's tar stream into FILE_DATA frames
// (lz4 or raw; a delta session's first INLINE_COMPRESS_BYTES compressed on this thread,
// the rest a few frames ahead on the thread pool; sent in order), keeps the stream digest, holds the stream within the window of
// unacknowledged bytes, and commits when the pacer says. Every frame of
// the session goes out through `send`, which counts and paces it.
//
// Must not touch: what the stream holds (tar-producer.ts), the receiver's
// frames (replies.ts), the manifest and the end of the pass (pass.ts).

import type { FrameChannel } from '../../protocol/channel.js';
import { Codec, encodeJsonFrame } from '../../protocol/frames.js';
import { FileFrameType, encodeFileDataParts } from '../../protocol/file-frames.js';
import { DATA_RUN_BYTES } from '../../protocol/sizes.js';
import type { ByteGate } from '../types.js';
import { encodePayload, encodePayloadInline, type Encoded } from '../../protocol/compress.js';
import type { Lz4Pool } from '../../protocol/lz4-pool.js';
import type { CommitPacer } from '../session/commit-pacer.js';
import type { SessionWaits } from '../session/waits.js';
import type { UnackedWindow } from '../session/window.js';

/**
 * Frames being compressed ahead of the one being sent, at most. Was 4; 2
 * keeps one frame compressing while one is written (the full pass has one
 * worker thread on 2 cores, pass-workers.ts), with fewer 1 MiB slices and
 * lz4 outputs alive at once (measured with READ_AHEAD in tar-producer.ts).
 */
const ENCODE_AHEAD = 2;
/**
 * The first this many stream bytes of a session are compressed on this
 * thread; only a session with more to send (a full copy, a large delta)
 * starts the compression pool's two workers. Measured (issue 14, usr tree
 * delta, 2–9 MB sent): the two workers spent 0.26 s and 0.10 s of CPU,
 * mostly booting, for frames this thread compresses in a few tens of ms
 * (liblz4, else the wasm codec). One commit's worth. A full pass that
 * was given its own pool (`compressor`, pass-workers.ts: already started
 * for the walk and the reads) uses it from the first frame.
 */
const INLINE_COMPRESS_BYTES = 32 * 1024 * 1024;

export interface StreamSenderParts {
  channel: FrameChannel;
  waits: SessionWaits;
  window: UnackedWindow;
  pacer: CommitPacer;
  totals: { bytesOnWire: number; payloadBytes: number };
  gate: ByteGate | undefined;
  signal: AbortSignal | undefined;
  /** xxh64 of one frame's raw bytes, and a running xxh64 over the whole stream. */
  h64Raw: (b: Uint8Array) => bigint;
  digest: { update(b: Uint8Array): unknown; digest(): bigint };
  /** Where frames are compressed (default: the process-wide pool). */
  compressor?: Lz4Pool;
  /**
   * Hands back a slice given to `write` once no frame needs its bytes any more (compressed, or written
   * by the socket), for the producer to fill again (TarProducer.recycle). Not called for a slice whose
   * frame failed to go out (the socket may still hold it).
   */
  release?: (slice: Buffer) => void;
}

/** A frame on its way: its parts once encoded, and what to hand back once the socket wrote it. */
interface PendingFrame {
  parts: Promise<{ parts: Buffer[]; enc: Encoded }>;
  /** The slice the frame was cut from, with how many of its frames still need its bytes. */
  slice: { buf: Buffer; left: number };
}

export class StreamSender {
  /** Stream bytes cut into frames so far (the next frame's offset). */
  offset = 0;
  private commitId = 0;
  private readonly pending: PendingFrame[] = [];
  private readonly p: StreamSenderParts;
  private readonly windowOpen = (): boolean => this.p.window.fits(0);

  constructor(parts: StreamSenderParts) {
    this.p = parts;
  }

  /** Writes one encoded frame (after the session's error, if any, throws it). */
  readonly send = (frame: Buffer | Buffer[]): Promise<void> => this.sendFrame(frame);

  /** `send`, with `onFlushed` run once the socket is done with the frame's bytes. */
  private async sendFrame(frame: Buffer | Buffer[], onFlushed?: () => void): Promise<void> {
    if (this.p.waits.error) throw this.p.waits.error;
    this.p.totals.bytesOnWire += Array.isArray(frame) ? frame.reduce((n, b) => n + b.length, 0) : frame.length;
    // The gate paces the frame onto the socket in slices (see FrameChannel.send).
    await this.p.channel.send(frame, this.p.gate && { gate: this.p.gate, signal: this.p.signal }, onFlushed);
  }

  /** One more frame of the slice no longer needs its bytes; after the last, the slice goes back. */
  private sliceDone(s: { buf: Buffer; left: number }): void {
    if (--s.left === 0) this.p.release?.(s.buf);
  }

  /** Sends one slice of the stream, as frames of at most DATA_RUN_BYTES (one receive slot each), committing when due. */
  async write(slice: Buffer): Promise<void> {
    const { waits, window, pacer, totals, h64Raw, digest } = this.p;
    const held = { buf: slice, left: Math.ceil(slice.length / DATA_RUN_BYTES) };
    for (let i = 0; i < slice.length; i += DATA_RUN_BYTES) {
      if (waits.error) throw waits.error;
      const raw = slice.subarray(i, i + DATA_RUN_BYTES);
      digest.update(raw);
      const at = this.offset;
      const hash = h64Raw(raw);
      this.offset += raw.length;
      window.add(raw.length);
      totals.payloadBytes += raw.length;
      pacer.added(raw.length);
      // lz4 runs here for a delta's first frames, else on the thread pool; frames leave in order. (The producer
      // reuses a slice only once it is released below: compressing copies it first, a raw frame holds it.)
      const encoded: Promise<Encoded> =
        at < INLINE_COMPRESS_BYTES && !this.p.compressor ? (async () => encodePayloadInline(raw))() : encodePayload(raw, this.p.compressor);
      const parts = encoded.then((enc) => ({ parts: encodeFileDataParts({ offset: at, rawLength: raw.length, codec: enc.codec, hash, payload: enc.payload }), enc }));
      // Marked handled now: a frame queued behind one that fails (a worker
      // that died) may reject before anyone awaits it; flushOne/settle see it.
      parts.catch(() => {});
      this.pending.push({ parts, slice: held });
      if (this.pending.length >= ENCODE_AHEAD) await this.flushOne();
      if (pacer.due()) {
        await this.flush();
        await this.send(encodeJsonFrame(FileFrameType.FILE_COMMIT, { id: this.commitId++, offset: this.offset }));
        pacer.committed();
      }
    }
  }

  /** Sends every frame still being encoded. */
  async flush(): Promise<void> {
    while (this.pending.length) await this.flushOne();
  }

  /** Lets frames still being encoded settle (after a failure, before the session is dropped). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.pending.map((f) => f.parts));
  }

  /** The stream digest, as the FILE_END frame carries it. */
  digestHex(): string {
    return this.p.digest.digest().toString(16).padStart(16, '0');
  }

  private async flushOne(): Promise<void> {
    const f = this.pending.shift()!;
    const { parts, enc } = await f.parts;
    // Measured (issue 14, /usr full copy, docs/file-replication.md "Buffers reused on a full pass"): a fresh
    // 1 MiB slice and a fresh lz4 output per frame, left to the garbage collector, drove full collections
    // through V8's external-memory accounting and page faults of fresh memory; both go back for reuse.
    const compressed = enc.codec === Codec.LZ4;
    if (compressed) this.sliceDone(f.slice);
    let flushed = false;
    let sent = false;
    const done = () => {
      if (!flushed || !sent) return;
      if (compressed) this.p.compressor?.recycle(enc.payload);
      else this.sliceDone(f.slice);
    };
    await this.sendFrame(parts, () => {
      flushed = true;
      done();
    });
    sent = true;
    done();
    // No idle timeout (the file engine never had one): the wait ends on an ACK or when the session fails.
    await this.p.waits.until(this.windowOpen, 'window space', Infinity);
  }
}
