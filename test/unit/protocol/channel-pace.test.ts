// FrameChannel pacing: a paced frame goes out in gate-admitted slices,
// frames never interleave, and a gate that rejects mid-frame still leaves a
// well-formed stream.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameChannel, PACE_SLICE_BYTES } from '../../../src/protocol/channel.js';
import type { ByteGate } from '../../../src/replication/types.js';

async function pair(writableHighWaterMark?: number): Promise<{ a: net.Socket; peer: () => net.Socket; received: () => Buffer; close: () => void }> {
  const chunks: Buffer[] = [];
  let peer: net.Socket | undefined;
  const server = net.createServer((s) => {
    peer = s;
    s.on('data', (b: Buffer) => chunks.push(b));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // net.Socket hands its options on to stream.Duplex; @types/node does not list this one.
  const a = new net.Socket((writableHighWaterMark ? { writableHighWaterMark } : {}) as net.SocketConstructorOpts);
  a.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => a.once('connect', () => r()));
  await new Promise<void>((r) => (peer ? r() : server.once('connection', () => setImmediate(r))));
  return {
    a,
    peer: () => peer!,
    received: () => Buffer.concat(chunks),
    close: () => {
      a.destroy();
      peer?.destroy();
      server.close();
    },
  };
}

/** Waits until the peer has received `n` bytes (a fixed pause is too short on a loaded machine); 30 s only bounds a hang. */
async function arrived(received: () => Buffer, n: number): Promise<void> {
  const end = Date.now() + 30_000;
  while (received().length < n) {
    if (Date.now() > end) throw new Error(`only ${received().length} of ${n} bytes arrived`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
/** Waits until `ok()` holds; 30 s only bounds a hang. */
async function until(ok: () => boolean): Promise<void> {
  const end = Date.now() + 30_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not reached in 30 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}
let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());

describe('FrameChannel paced send', () => {
  it('admits each slice through the gate and keeps frames whole and in order', async () => {
    const p = await pair();
    cleanup = p.close;
    const ch = new FrameChannel(p.a, { onDecodeError: () => undefined });
    const asked: number[] = [];
    const gate: ByteGate = { acquire: async (n) => void asked.push(n) };
    const big = Buffer.alloc(3 * PACE_SLICE_BYTES + 100, 0xaa);
    const small = Buffer.alloc(10, 0xbb);
    await Promise.all([ch.send(big, { gate }), ch.send(small)]);
    await arrived(p.received, big.length + small.length);
    expect(asked).toEqual([PACE_SLICE_BYTES, PACE_SLICE_BYTES, PACE_SLICE_BYTES, 100]);
    expect(p.received().equals(Buffer.concat([big, small]))).toBe(true);
    expect(ch.bytesWritten).toBe(big.length + small.length);
  });

  it('a gate that rejects mid-frame: the frame is still completed, then the error is thrown', async () => {
    const p = await pair();
    cleanup = p.close;
    const ch = new FrameChannel(p.a, { onDecodeError: () => undefined });
    let calls = 0;
    const gate: ByteGate = {
      acquire: async () => {
        if (++calls === 2) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      },
    };
    const frame = Buffer.alloc(4 * PACE_SLICE_BYTES, 0xcc);
    await expect(ch.send(frame, { gate })).rejects.toThrow('aborted');
    expect(calls).toBe(2); // no further waiting once rejected
    await arrived(p.received, frame.length);
    expect(p.received().equals(frame)).toBe(true);
  });

  it("a gate that rejects mid-frame: the frame's bytes are released only once the socket is done with them", async () => {
    // A held cork keeps every slice in the socket's own buffer (under its 4 MiB high-water mark, so no wait
    // for 'drain'); the caller's buffer must not be handed back while the socket still holds a view of it.
    const p = await pair(4 * 1024 * 1024);
    cleanup = p.close;
    const ch = new FrameChannel(p.a, { onDecodeError: () => undefined });
    let calls = 0;
    const gate: ByteGate = {
      acquire: async () => {
        if (++calls === 2) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      },
    };
    const frame = Buffer.alloc(4 * PACE_SLICE_BYTES, 0xdd);
    let flushed = 0;
    p.a.cork();
    await expect(ch.send(frame, { gate }, () => flushed++)).rejects.toThrow('aborted');
    await new Promise((r) => setImmediate(r));
    expect(flushed).toBe(0);
    p.a.uncork();
    await arrived(p.received, frame.length);
    await new Promise((r) => setImmediate(r));
    expect(flushed).toBe(1);
    expect(p.received().equals(frame)).toBe(true);
  });

  it('a send on a closed channel releases its bytes at once, and a write cut off by the close releases them once', async () => {
    const p = await pair(4 * 1024 * 1024);
    cleanup = p.close;
    const ch = new FrameChannel(p.a, { onDecodeError: () => undefined });
    let flushed = 0;
    p.a.cork();
    await ch.send(Buffer.alloc(1000, 1), undefined, () => flushed++);
    expect(flushed).toBe(0);
    p.a.destroy();
    await ch.whenClosed();
    await new Promise((r) => setImmediate(r));
    expect(flushed).toBe(1); // the destroyed socket's callback
    await expect(ch.send(Buffer.alloc(10, 2), undefined, () => flushed++)).rejects.toThrow();
    expect(flushed).toBe(2); // never handed to the socket
  });

  /**
   * A peer that stops reading (the kernel's buffer fills, so what is handed to the socket stays there) and
   * half-closes once `send` has handed the socket `handed` bytes: the send fails, but the socket, not
   * destroyed, still holds (and would still write) them, so the frame's buffer must not go back until the
   * socket lets go of it, on destroy.
   */
  async function finWhileSending(handed: number, send: (ch: FrameChannel, onFlushed: () => void) => Promise<void>): Promise<void> {
    const p = await pair();
    cleanup = p.close;
    const peer = p.peer();
    peer.pause();
    const ch = new FrameChannel(p.a, { onDecodeError: () => undefined });
    const filler = Buffer.alloc(1 << 20);
    while (p.a.write(filler));
    let flushed = 0;
    const failed = expect(send(ch, () => flushed++)).rejects.toThrow();
    await until(() => ch.bytesWritten >= handed);
    peer.end();
    await failed;
    await new Promise((r) => setTimeout(r, 50));
    expect(p.a.destroyed).toBe(false);
    expect(p.a.writableLength).toBeGreaterThan(0);
    expect(flushed).toBe(0);
    p.a.destroy();
    await until(() => flushed > 0);
    await new Promise((r) => setImmediate(r));
    expect(flushed).toBe(1);
  }

  it("a peer's FIN between slices: the bytes already in the socket are released only by their write callbacks", async () => {
    const gate: ByteGate = { acquire: async () => {} };
    // Failed once the first of the frame's four slices is in the socket.
    await finWhileSending(PACE_SLICE_BYTES, (ch, onFlushed) => ch.send(Buffer.alloc(4 * PACE_SLICE_BYTES, 0xaa), { gate }, onFlushed));
  });

  it("a peer's FIN while an unpaced frame waits for 'drain': its bytes stay the socket's until it lets go", async () => {
    await finWhileSending(PACE_SLICE_BYTES, (ch, onFlushed) => ch.send(Buffer.alloc(PACE_SLICE_BYTES, 0xbb), undefined, onFlushed));
  });

  it('a frame of no parts releases at once', async () => {
    const p = await pair();
    cleanup = p.close;
    const ch = new FrameChannel(p.a, { onDecodeError: () => undefined });
    let flushed = 0;
    await ch.send([], undefined, () => flushed++);
    expect(flushed).toBe(1);
  });
});
