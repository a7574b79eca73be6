// Resume: the receiver killed with SIGKILL mid-pass and restarted, and the
// connection cut again and again by a loopback proxy. Each time the pass
// resumes from what the receiver committed and ends byte-identical, without
// sending the volume twice. Also: frames corrupted on the way are refused
// by the receiver and sent again.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WINDOW_BYTES, runBlockPass } from '../../src/replication/block/pass.js';
import { blockReadReserve } from '../../src/replication/block/source-reader.js';
import type { ByteGate, ReceiverAddress } from '../../src/replication/types.js';
import { LoopDisk } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';
import { fillVolume, scatterWrites, sha256Of, startReceiver, type RunningReceiver } from '../helpers/block.js';

const env = needs({ root: true, tools: ['losetup'] });
const MiB = 1024 * 1024;
const SIZE = 160 * MiB;
/** At most what a cut can cost: the agent's window of unacknowledged bytes, one read (4 MiB) of rescan, the manifest. */
const SLACK = Math.min(WINDOW_BYTES, SIZE) + 4 * MiB + 2 * MiB;
const log = pino({ level: 'silent' });

/** A TCP proxy that forwards to `port` and cuts every connection after `cutEvery` bytes upstream. */
function cuttingProxy(port: number, cutEvery: number): Promise<{ server: Server; port: number; cuts: () => number }> {
  let cuts = 0;
  const server = createServer((client: Socket) => {
    const upstream = connect(port, '127.0.0.1');
    let forwarded = 0;
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (b: Buffer) => {
      forwarded += b.length;
      upstream.write(b);
      if (forwarded >= cutEvery) {
        cuts += 1;
        cut();
      }
    });
    upstream.on('data', (b: Buffer) => client.write(b));
    client.on('error', cut);
    upstream.on('error', cut);
    client.on('close', cut);
    upstream.on('close', cut);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port, cuts: () => cuts })));
}

describe.runIf(env.ok)('block pass resume', () => {
  let dir: string;
  let src: LoopDisk;
  const disks: LoopDisk[] = [];
  const receivers: RunningReceiver[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-block-resume-'));
    src = LoopDisk.create(SIZE, 'ferry-br-src-');
    disks.push(src);
    fillVolume(src.device, SIZE, 2 * MiB);
  });

  afterAll(async () => {
    for (const r of receivers) await r.stop('SIGKILL');
    for (const d of disks) d.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('survives the receiver being killed with SIGKILL mid-pass and restarted', async () => {
    const dst = LoopDisk.create(SIZE, 'ferry-br-dst-');
    disks.push(dst);
    const data = join(dir, 'recv-kill');
    let recv = await startReceiver(data, [`disk0=${dst.device}`]);
    receivers.push(recv);
    const port = recv.info.port;
    const address: ReceiverAddress = { host: '127.0.0.1', port, token: recv.info.token, fingerprint: recv.info.fingerprint };
    let sent = 0;
    let killed = false;
    let ackedAtKill = 0;
    // The gate admits every frame; once a third of the volume went out it kills the receiver and starts a new one.
    const gate: ByteGate = {
      acquire: async (n) => {
        sent += n;
        if (!killed && sent > SIZE / 3) {
          killed = true;
          await recv.stop('SIGKILL');
          recv = await startReceiver(data, [`disk0=${dst.device}`], [], port);
          receivers.push(recv);
        }
      },
    };
    const summary = await runBlockPass(src.device, 'disk0', {
      receiver: address,
      log,
      gate,
      onProgress: (p) => {
        if (!killed) ackedAtKill = p.doneBytes;
      },
    });
    expect(killed).toBe(true);
    expect(await sha256Of(dst.device)).toBe(await sha256Of(src.device));
    // The restarted receiver told the agent where to resume: past what was acknowledged.
    const resumed = [...recv.stderr().matchAll(/"resumeFrom":(\d+)/g)].map((m) => Number(m[1]));
    expect(resumed[0]).toBeGreaterThan(0);
    // It found writes no commit covered and forgot them rather than trust them.
    expect(recv.stderr()).toMatch(/recovered from an unclean stop/);
    expect(resumed[0]).toBeGreaterThanOrEqual(Math.floor(ackedAtKill / (4 * MiB)) * 4 * MiB - 4 * MiB);
    expect(summary.bytesRead).toBeLessThan(SIZE + resumed[0]! / 1 + SLACK);
    // Random third of the volume does not compress: the whole pass sent it about once.
    expect(summary.bytesOnWire).toBeLessThan(SIZE * 0.7 + SLACK);
  });

  it('survives a proxy cutting the connection again and again', async () => {
    const dst = LoopDisk.create(SIZE, 'ferry-br-dst2-');
    disks.push(dst);
    const recv = await startReceiver(join(dir, 'recv-proxy'), [`disk0=${dst.device}`]);
    receivers.push(recv);
    const proxy = await cuttingProxy(recv.info.port, 12 * MiB);
    try {
      const summary = await runBlockPass(src.device, 'disk0', {
        receiver: { host: '127.0.0.1', port: proxy.port, token: recv.info.token, fingerprint: recv.info.fingerprint },
        log,
      });
      expect(proxy.cuts()).toBeGreaterThanOrEqual(3);
      expect(await sha256Of(dst.device)).toBe(await sha256Of(src.device));
      // Each cut costs at most the unacknowledged window, never the volume again.
      expect(summary.bytesOnWire).toBeLessThan(SIZE * 0.7 + proxy.cuts() * SLACK);
      const resumed = [...recv.stderr().matchAll(/"resumeFrom":(\d+)/g)].map((m) => Number(m[1]));
      expect(resumed.filter((r) => r > 0).length).toBeGreaterThanOrEqual(2);

      // A delta through the same proxy after scattered writes, hashed on the main thread in WebAssembly
      // (the other passes read and hash in the native module): the same hashes, so the same digest.
      scatterWrites(src.device, SIZE, 30, 64 * 1024);
      const delta = await runBlockPass(
        src.device,
        'disk0',
        { receiver: { host: '127.0.0.1', port: proxy.port, token: recv.info.token, fingerprint: recv.info.fingerprint }, log, verify: true },
        { hashInJs: true },
      );
      expect(delta.pass).toBe('delta');
      expect(delta.verified).toBe(true);
      expect(await sha256Of(dst.device)).toBe(await sha256Of(src.device));
    } finally {
      proxy.server.close();
    }
  });

  it('stops cleanly on abort: what was sent is committed, the next pass does not send it again', async () => {
    const target = join(dir, 'abort.img');
    const recv = await startReceiver(join(dir, 'recv-abort'), [`disk0=${target}`]);
    receivers.push(recv);
    const receiver = { host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint };
    const ac = new AbortController();
    let sent = 0;
    const gate: ByteGate = {
      acquire: async (n) => {
        sent += n;
        if (sent > SIZE / 4) ac.abort();
      },
    };
    await expect(runBlockPass(src.device, 'disk0', { receiver, log, gate, signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
    // What went out before the abort was committed: the next pass finds it on the receiver. It reads into the
    // buffers the aborted pass handed back (blockReadReserve), some of them only once its frames were dropped.
    const rest = await runBlockPass(src.device, 'disk0', { receiver, log });
    // The pass is over: its read buffers are kept for the next one.
    expect(blockReadReserve.size).toBeGreaterThan(0);
    expect(rest.pass).toBe('full');
    expect(rest.bytesSkippedUnchanged).toBeGreaterThan(0);
    expect(rest.bytesOnWire + sent).toBeLessThan(SIZE * 0.7 + SLACK);
    expect(await sha256Of(target)).toBe(await sha256Of(src.device));
  });

  it('resends frames the receiver refused as corrupt; they are never written', async () => {
    const target = join(dir, 'corrupt.img');
    const recv = await startReceiver(join(dir, 'recv-corrupt'), [`disk0=${target}`]);
    receivers.push(recv);
    const summary = await runBlockPass(
      src.device,
      'disk0',
      { receiver: { host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint }, log, verify: true },
      { corruptDataFrames: new Set([2, 7, 30]) },
    );
    expect(summary.verified).toBe(true);
    expect(await sha256Of(target)).toBe(await sha256Of(src.device));
    const refused = recv.stderr().match(/FERRY_CHUNK_(HASH|CORRUPT)/g) ?? [];
    expect(refused.length).toBeGreaterThanOrEqual(3);
    expect(readFileSync(target).length).toBe(SIZE);
  });
});
