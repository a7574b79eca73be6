// A real `ferry receive` child against hostile peers on 127.0.0.1 (issue 18,
// points 3, 4, 5b and 9), with a descriptor limit of 256 set on it:
// connections waiting to authenticate beyond the caps are refused with a log
// line, and every one of them is closed at the handshake timeout; an
// authenticated session is served while the caps are full; a peer that has
// not authenticated cannot make the receiver buffer more than a HELLO; a
// peer that floods requests without reading the replies stalls instead of
// growing the receiver's memory; a HELLO whose version is a string is told
// that a number was expected. After each attack the receiver is alive, its
// memory is bounded (RSS read from /proc, generous bounds) and it serves a
// legitimate `ferry migrate`, whose target is identical by sha256.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClientSession, errorFromFrame, type HelloFields } from '../../src/replication/session/connect.js';
import { FrameDecoder, FrameType, MAX_FRAME_BYTES, decodeManifestFrame, encodeJsonFrame, type RawFrame } from '../../src/protocol/frames.js';
import { runFerry } from '../helpers/cli.js';
import { fillVolume, migrateArgs, sha256Of, startReceiver, type RunningReceiver } from '../helpers/block.js';
import { openDescriptors, rssMiB, sampleRss } from '../helpers/proc.js';
import { until } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
/** Small caps and a short handshake timeout, so that the attacks stay small and the test fast. */
const MAX_PENDING = 120;
const MAX_PER_ADDRESS = 100;
const HANDSHAKE_TIMEOUT_S = 3;
/** The receiver's descriptor limit: without the caps, the idle connections below would exhaust it. */
const NOFILE = 256;
/** Generous: the receiver idles near 80–100 MiB; each attack, unbounded, took it past 400 MiB. */
const RSS_BOUND_MIB = 300;

describe('the receiver under hostile connections', () => {
  let dir: string;
  let src: string;
  let recv: RunningReceiver;
  const pid = () => recv.child.pid!;
  const addr = () => ({ host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint });

  /** A legitimate migration of the source image into `target`, checked byte for byte. */
  async function migrateTo(target: string): Promise<void> {
    const r = await runFerry(migrateArgs(recv.info, [`${src}=${target}`]));
    expect(r.code, r.stderr).toBe(0);
    expect(await sha256Of(join(dir, `${target}.img`), SIZE)).toBe(await sha256Of(src));
  }

  /** Idle TCP connections (no TLS byte sent) from `localAddress`; `closed()` counts those the receiver has closed. */
  async function idleConnections(localAddress: string, n: number, into: { sockets: Socket[]; closed: number }): Promise<void> {
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve) => {
        const s = netConnect({ host: '127.0.0.1', port: recv.info.port, localAddress });
        s.on('error', () => {});
        s.once('close', () => {
          into.closed++;
          resolve();
        });
        s.once('connect', () => resolve());
        into.sockets.push(s);
      });
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-hostile-'));
    src = join(dir, 'src.img');
    writeFileSync(src, Buffer.alloc(SIZE));
    fillVolume(src, SIZE, MiB);
    const targets = ['a', 'b', 'c', 'd', 'flood'].map((t) => `${t}=${join(dir, `${t}.img`)}`);
    const limits = ['--max-connections', String(MAX_PENDING), '--max-connections-per-address', String(MAX_PER_ADDRESS), '--handshake-timeout', String(HANDSHAKE_TIMEOUT_S)];
    recv = await startReceiver(join(dir, 'recv'), targets, limits);
    execFileSync('prlimit', ['--pid', String(pid()), `--nofile=${NOFILE}:${NOFILE}`]);
  });

  afterAll(async () => {
    await recv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses idle connections beyond the caps with a log line, closes the others at the handshake timeout, and keeps serving', async () => {
    const idle = { sockets: [] as Socket[], closed: 0 };
    // 150 from one address: 100 held (the cap per address), 50 refused;
    // 150 from another: 20 held (the total cap of 120 is then reached), 130 refused.
    await idleConnections('127.0.0.2', 150, idle);
    await idleConnections('127.0.0.3', 150, idle);
    await until('both refusals in the receiver log', () => /127\.0\.0\.2 .*--max-connections-per-address 100\) is reached/.test(recv.stderr()) && /--max-connections 120\) is reached/.test(recv.stderr()), 30_000, recv.stderr);
    expect(openDescriptors(pid())).toBeLessThan(NOFILE);
    // None of them ever sends a byte: the receiver closes every one (at the handshake timeout).
    await until('every idle connection to be closed by the receiver', () => idle.closed === idle.sockets.length, 60_000, recv.stderr);
    expect(recv.stderr()).toMatch(/TLS handshake failed; connection closed/);
    expect(recv.child.exitCode).toBeNull();
    await migrateTo('a');
    expect(rssMiB(pid())).toBeLessThan(RSS_BOUND_MIB);
  });

  it('serves an authenticated session while the caps are full', async () => {
    const hello: HelloFields = { kind: 'block', target: 'b', passId: randomUUID(), sizeBytes: SIZE, chunkSize: 64 * 1024 };
    const session = await openClientSession(addr(), hello);
    const flood = { sockets: [] as Socket[], closed: 0 };
    await idleConnections('127.0.0.4', MAX_PER_ADDRESS, flood);
    await idleConnections('127.0.0.5', MAX_PENDING - MAX_PER_ADDRESS + 10, flood);
    // The ten past the total cap are refused at once; the others wait for the handshake timeout.
    await until('the ten connections past the cap to be refused', () => flood.closed >= 10, 30_000, recv.stderr);
    const reply = new Promise<RawFrame>((resolve) => session.channel.onFrame(resolve));
    await session.channel.send(encodeJsonFrame(FrameType.MANIFEST_REQUEST, { first: 0, count: 16 }));
    const frame = await reply;
    expect(frame.type).toBe(FrameType.MANIFEST);
    expect(decodeManifestFrame(frame.body).hashes.length).toBe(16 * 8);
    // The caps were full while the session was answered.
    expect(flood.sockets.length - flood.closed).toBe(MAX_PENDING);
    session.channel.destroy();
    await until('every flooding connection to be closed by the receiver', () => flood.closed === flood.sockets.length, 60_000, recv.stderr);
    await migrateTo('b');
  });

  it('buffers no more than a HELLO for a peer that has not authenticated (a 4 MiB frame header ends the connection)', async () => {
    const N = 90;
    const head = Buffer.alloc(5);
    head.writeUInt32BE(MAX_FRAME_BYTES, 0);
    head[4] = FrameType.HELLO;
    const body = Buffer.alloc(MAX_FRAME_BYTES - 256 * 1024, 0x41); // almost all of it, shared by every connection
    const rss = sampleRss(pid());
    // Opened ten at a time (all stay open together), so that no handshake waits long on a busy machine.
    const answers: Array<Promise<RawFrame[]>> = [];
    for (let i = 0; i < N; i += 10) {
      const batch = Array.from({ length: 10 }, () => {
        let secured!: () => void;
        const ready = new Promise<void>((r) => (secured = r));
        const answer = new Promise<RawFrame[]>((resolve) => {
          const frames: RawFrame[] = [];
          const decoder = new FrameDecoder();
          const s = tlsConnect({ host: '127.0.0.1', port: recv.info.port, rejectUnauthorized: false }, () => {
            s.write(head);
            s.write(body);
            secured();
          });
          s.on('data', (d: Buffer) => frames.push(...decoder.push(d)));
          s.on('error', () => {});
          s.once('close', () => {
            secured();
            resolve(frames);
          });
        });
        return { ready, answer };
      });
      await Promise.all(batch.map((b) => b.ready));
      answers.push(...batch.map((b) => b.answer));
    }
    const frames = await Promise.all(answers);
    const peak = rss.stop();
    // Each is refused on its header with a log line. The ERROR frame is sent too, though a
    // busy client may lose it: the reset that ends a connection with unread bytes discards it.
    // The lines reach this process through the receiver's stderr pipe after its sockets closed (a
    // CI run read 87 of the 90 at once): waited for, then counted.
    const refusals = () => recv.stderr().match(/frame of 4194304 bytes exceeds the cap of 65536 before HELLO was accepted/g) ?? [];
    await until(`${N} refusals in the receiver's log`, () => refusals().length >= N, 30_000, recv.stderr);
    expect(refusals().length).toBe(N);
    for (const f of frames) expect(f.length === 0 || (f.length === 1 && errorFromFrame(f[0]!).code === 'FERRY_FRAME_TOO_LARGE')).toBe(true);
    expect(peak).toBeLessThan(RSS_BOUND_MIB);
    await migrateTo('c');
  });

  it('stops reading from a peer that floods requests without reading the replies, and serves others meanwhile', async () => {
    const GiB = 1024 * MiB;
    const session = await openClientSession(addr(), { kind: 'block', target: 'flood', passId: randomUUID(), sizeBytes: 8 * GiB, chunkSize: 64 * 1024 });
    const socket = session.channel.socket;
    socket.pause(); // never reads a reply
    const request = encodeJsonFrame(FrameType.MANIFEST_REQUEST, { first: 0, count: 8192 });
    const burst = Buffer.concat(Array.from({ length: 10_000 }, () => request));
    const rss = sampleRss(pid());
    for (let i = 0; i < 100; i++) socket.write(burst); // a million requests
    // Wait until the receiver has either taken them all or stopped taking them (no progress for a second).
    let last = -1;
    let still = 0;
    await until(
      'the receiver to take the flood or stop reading it',
      () => {
        const left = socket.writableLength;
        if (left === 0) return true;
        still = left === last ? still + 1 : 0;
        last = left;
        return still >= 10;
      },
      60_000,
    );
    expect(socket.writableLength).toBeGreaterThan(0); // it stopped reading the peer that does not read
    await migrateTo('d');
    const peak = rss.stop();
    expect(peak).toBeLessThan(RSS_BOUND_MIB);
    session.channel.destroy();
  });

  it('tells a HELLO whose version is a string that a number was expected', async () => {
    const hello: HelloFields = { kind: 'block', target: 'a', passId: randomUUID(), sizeBytes: SIZE };
    const err = await openClientSession(addr(), hello, { version: '1' as unknown as number }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FERRY_FRAME_MALFORMED', message: /version: .*expected number, received string \(got "1"\)/ });
    expect((err as Error).message).not.toMatch(/is not supported/);
  });

  it('is still running and serving after all of the above', async () => {
    expect(recv.child.exitCode).toBeNull();
    await migrateTo('a');
  });
});
