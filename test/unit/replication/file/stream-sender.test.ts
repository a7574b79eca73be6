// The file sender compresses a session's first frames on the calling thread
// and only then hands frames to the compression pool: a delta that sends a
// few MB never starts the pool's worker threads (issue 14: their start-up
// cost more CPU than the whole delta's compression).

import { describe, expect, it, vi } from 'vitest';
import { Codec } from '../../../../src/protocol/frames.js';
import { FileFrameType, decodeFileData } from '../../../../src/protocol/file-frames.js';
import { lz4Decompress } from '../../../../src/protocol/lz4-block.js';
import { hasher } from '../../../../src/protocol/xxhash.js';
import { DATA_RUN_BYTES } from '../../../../src/protocol/sizes.js';
import { CommitPacer } from '../../../../src/replication/session/commit-pacer.js';
import { SessionWaits } from '../../../../src/replication/session/waits.js';
import { UnackedWindow } from '../../../../src/replication/session/window.js';

// Counts the frames that went to the pool (the real encoder still does the work).
const pooled = vi.hoisted(() => ({ calls: 0 }));
vi.mock('../../../../src/protocol/compress.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../../src/protocol/compress.js')>();
  return {
    ...real,
    encodePayload: (raw: Buffer) => {
      pooled.calls++;
      return real.encodePayload(raw);
    },
  };
});
const { StreamSender } = await import('../../../../src/replication/file/stream-sender.js');

async function senderInto(frames: Buffer[], more: { compressor?: never; channel?: never; release?: (slice: Buffer) => void } = {}) {
  const { h64Raw, create64 } = await hasher();
  return new StreamSender({
    // A frame goes out whole or as header + payload.
    channel: { send: async (f: Buffer | Buffer[]) => void frames.push(Array.isArray(f) ? Buffer.concat(f) : f) } as never,
    waits: new SessionWaits(),
    window: new UnackedWindow(1 << 30),
    pacer: new CommitPacer({ firstBytes: 1 << 30, maxBytes: 1 << 30, everyMs: 3_600_000 }),
    totals: { bytesOnWire: 0, payloadBytes: 0 },
    gate: undefined,
    signal: undefined,
    h64Raw,
    digest: create64(),
    ...more,
  });
}

/** The stream the frames carry, decoded (frames are `u32 length | type | body`). */
function unframe(frames: Buffer[]): { stream: Buffer; codecs: number[] } {
  const parts: Buffer[] = [];
  const codecs: number[] = [];
  for (const f of frames) {
    expect(f[4]).toBe(FileFrameType.FILE_DATA);
    const d = decodeFileData(f.subarray(5));
    codecs.push(d.codec);
    parts.push(d.codec === Codec.LZ4 ? lz4Decompress(d.payload, d.rawLength) : d.payload);
  }
  return { stream: Buffer.concat(parts), codecs };
}

describe('file stream sender', () => {
  it('compresses a small stream on its own thread, the pool only past the first 32 MiB', async () => {
    const text = Buffer.from('ferry replicates files, and files compress well. '.repeat(2000));
    const frames: Buffer[] = [];
    const sender = await senderInto(frames);
    // A delta's worth: a few MB, every frame compressed, none through the pool.
    const small = Buffer.concat(Array.from({ length: 48 }, () => text)).subarray(0, 4 * DATA_RUN_BYTES);
    await sender.write(small);
    await sender.flush();
    expect(pooled.calls).toBe(0);
    const first = unframe(frames);
    expect(first.codecs.every((c) => c === Codec.LZ4)).toBe(true);
    expect(first.stream.equals(small)).toBe(true);

    // A full copy's worth: past 32 MiB of stream, frames go to the pool.
    const big = Buffer.alloc(40 * 1024 * 1024);
    for (let at = 0; at < big.length; at += text.length) text.copy(big, at);
    await sender.write(big);
    await sender.flush();
    const afterInline = Math.ceil((40 * 1024 * 1024 + small.length - 32 * 1024 * 1024) / DATA_RUN_BYTES);
    expect(pooled.calls).toBe(afterInline);
    const all = unframe(frames);
    expect(all.stream.equals(Buffer.concat([small, big]))).toBe(true);
  });

  it('uses a pool it was given (a full pass: pass-workers.ts) from the first frame', async () => {
    const before = pooled.calls;
    const frames: Buffer[] = [];
    // The counting encodePayload above stands in for the pool; the object only marks that one was given.
    const sender = await senderInto(frames, { compressor: {} as never });
    const text = Buffer.from('a full pass starts its pool before the first frame. '.repeat(Math.ceil((2 * DATA_RUN_BYTES) / 52))).subarray(0, 2 * DATA_RUN_BYTES);
    await sender.write(text);
    await sender.flush();
    expect(pooled.calls - before).toBe(2); // (inline: 0)
    expect(unframe(frames).stream.equals(text)).toBe(true);
  });

  it('hands each slice back once no frame needs its bytes: a raw frame only after the socket wrote it, never after a failed write', async () => {
    const frames: Buffer[] = [];
    const writes: (() => void)[] = [];
    let failNext = false;
    const released: Buffer[] = [];
    const sender = await senderInto(frames, {
      // The socket's write callbacks run when the test says (writes), as a real socket's run once it took the bytes.
      channel: {
        send: async (f: Buffer | Buffer[], _pace: unknown, onFlushed?: () => void) => {
          if (failNext) {
            onFlushed?.(); // FrameChannel.send runs it on failure too
            throw new Error('connection reset');
          }
          frames.push(Array.isArray(f) ? Buffer.concat(f) : f);
          if (onFlushed) writes.push(onFlushed);
        },
      } as never,
      release: (slice) => released.push(slice),
    });
    // Random bytes travel raw: the frame's payload is the slice itself.
    const random = Buffer.from(Array.from({ length: 64 * 1024 }, () => Math.floor(Math.random() * 256)));
    // Text compresses: lz4 copied the slice, which is free as soon as the frame is encoded.
    const text = Buffer.from('slices go back to the producer once sent. '.repeat(1500));
    await sender.write(random);
    await sender.write(text);
    await sender.flush();
    expect(unframe(frames).codecs).toEqual([Codec.RAW, Codec.LZ4]);
    expect(released).toEqual([text]);
    for (const w of writes.splice(0)) w();
    expect(released).toEqual([text, random]);
    expect(unframe(frames).stream.equals(Buffer.concat([random, text]))).toBe(true);

    // A frame that did not go out may still be held by the socket: its slice is not handed back.
    failNext = true;
    const lost = Buffer.from(random);
    await sender.write(lost);
    await expect(sender.flush()).rejects.toThrow('connection reset');
    expect(released).toEqual([text, random]);
  });
});
