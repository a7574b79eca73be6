// The receiver's side of the wire, driven frame by frame by a hand-made
// client: authentication (join token, pinned certificate), protocol
// violations (oversized frame, unknown frame type, unknown version), a
// corrupted DATA frame refused and never written — and through all of it
// the receiver keeps serving, several connections at once.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClientSession, errorFromFrame, type ClientSession } from '../../src/replication/session/connect.js';
import {
  Codec,
  FrameType,
  MAX_FRAME_BYTES,
  decodeJson,
  AckSchema,
  NackSchema,
  encodeDataFrame,
  encodeFrame,
  encodeJsonFrame,
  type RawFrame,
} from '../../src/protocol/frames.js';
import { loadChunkHasher } from '../../src/protocol/chunk-hash.js';
import { runFerry } from '../helpers/cli.js';
import { migrateArgs, startReceiver, type RunningReceiver } from '../helpers/block.js';

const CS = 32 * 1024;
const SIZE = 4 * 1024 * 1024;

function nextFrame(s: ClientSession): Promise<RawFrame> {
  return new Promise((resolve, reject) => {
    s.channel.onFrame(resolve);
    void s.channel.whenClosed().then(reject);
  });
}

describe('receiver wire handling', () => {
  let dir: string;
  let recv: RunningReceiver;
  const addr = () => ({ host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint });
  const hello = (target: string) => ({ kind: 'block' as const, target, passId: randomUUID(), sizeBytes: SIZE, chunkSize: CS });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-block-wire-'));
    recv = await startReceiver(join(dir, 'recv'), [`a=${join(dir, 'a.img')}`, `b=${join(dir, 'b.img')}`, `c=${join(dir, 'c.img')}`]);
  });

  afterAll(async () => {
    await recv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a wrong join token with SMS.0304', async () => {
    await expect(openClientSession({ ...addr(), token: 'not-the-token' }, hello('a'))).rejects.toMatchObject({ code: 'SMS.0304' });
  });

  it('refuses to talk to a receiver whose certificate is not the pinned one (SMS.0304)', async () => {
    await expect(openClientSession({ ...addr(), fingerprint: 'ab'.repeat(32) }, hello('a'))).rejects.toMatchObject({ code: 'SMS.0304', message: /not the pinned/ });
  });

  it('refuses an unknown protocol version and an unknown target', async () => {
    await expect(openClientSession(addr(), hello('a'), { version: 99 })).rejects.toMatchObject({ code: 'FERRY_PROTOCOL_VERSION', message: /speaks 1/ });
    await expect(openClientSession(addr(), hello('nope'))).rejects.toMatchObject({ code: 'SMS.0411' });
  });

  it('answers an oversized frame with an error frame and closes only that connection', async () => {
    const s = await openClientSession(addr(), hello('a'));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    head[4] = FrameType.DATA;
    const reply = nextFrame(s);
    s.channel.socket.write(head);
    const f = await reply;
    expect(f.type).toBe(FrameType.ERROR);
    expect(errorFromFrame(f).code).toBe('FERRY_FRAME_TOO_LARGE');
    await s.channel.whenClosed();
    // Still serving.
    const again = await openClientSession(addr(), hello('a'));
    again.channel.destroy();
  });

  it('answers an unknown frame type with an error frame', async () => {
    const s = await openClientSession(addr(), hello('a'));
    const reply = nextFrame(s);
    await s.channel.send(encodeFrame(0x7e, Buffer.from('??')));
    const f = await reply;
    expect(errorFromFrame(f)).toMatchObject({ code: 'FERRY_FRAME_UNKNOWN' });
    await s.channel.whenClosed();
  });

  it('refuses a DATA frame whose chunk does not match its hash, writes nothing, and takes the good one', async () => {
    const hasher = await loadChunkHasher();
    const s = await openClientSession(addr(), hello('b'));
    const data = randomBytes(2 * CS);
    const hashes = [hasher.hash(data.subarray(0, CS)), hasher.hash(data.subarray(CS))];
    const corrupt = Buffer.from(data);
    corrupt[CS + 5]! ^= 1;
    const frames: RawFrame[] = [];
    s.channel.onFrame((f) => frames.push(f));
    await s.channel.send(encodeDataFrame({ seq: 1, offset: 4 * CS, rawLength: 2 * CS, codec: Codec.RAW, hashes, payload: corrupt }));
    await s.channel.send(encodeJsonFrame(FrameType.COMMIT, { id: 1, frontier: 0 }));
    while (frames.length < 2) await new Promise((r) => setTimeout(r, 20));
    expect(frames[0]!.type).toBe(FrameType.NACK);
    expect(decodeJson(NackSchema, FrameType.NACK, frames[0]!.body)).toMatchObject({ seq: 1, code: 'FERRY_CHUNK_HASH' });
    expect(decodeJson(AckSchema, FrameType.ACK, frames[1]!.body).id).toBe(1);
    const target = readFileSync(join(dir, 'b.img'));
    expect(target.subarray(4 * CS, 6 * CS).equals(Buffer.alloc(2 * CS))).toBe(true);

    await s.channel.send(encodeDataFrame({ seq: 2, offset: 4 * CS, rawLength: 2 * CS, codec: Codec.RAW, hashes, payload: data }));
    await s.channel.send(encodeJsonFrame(FrameType.COMMIT, { id: 2, frontier: 0 }));
    while (frames.length < 3) await new Promise((r) => setTimeout(r, 20));
    expect(frames[2]!.type).toBe(FrameType.ACK);
    expect(readFileSync(join(dir, 'b.img')).subarray(4 * CS, 6 * CS).equals(data)).toBe(true);
    s.channel.destroy();
  });

  it('serves a pass while another connection stalls mid-frame and a bare TLS client idles', async () => {
    const stalled = await openClientSession(addr(), hello('a'));
    const head = Buffer.alloc(64);
    head.writeUInt32BE(1 + 2 * CS, 0);
    head[4] = FrameType.DATA;
    stalled.channel.socket.write(head); // a frame that never completes
    const idle = connect({ host: '127.0.0.1', port: recv.info.port, rejectUnauthorized: false });
    await new Promise((r) => idle.once('secureConnect', r));
    const img = join(dir, 'src.img');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(img, randomBytes(SIZE));
    const r = await runFerry(migrateArgs(recv.info, [`${img}=c`]));
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'c.img')).equals(readFileSync(img))).toBe(true);
    stalled.channel.destroy();
    idle.destroy();
  });

  it('keeps serving after all of the above', () => {
    expect(recv.child.exitCode).toBeNull();
  });
});
