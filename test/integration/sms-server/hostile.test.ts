// `ferry control-plane` against hostile peers (issue 18, points 4 and 8): a
// real child process over HTTPS on 127.0.0.1, attacked with raw TLS sockets.
//
// - Bodies before authentication: 150 unsigned POSTs announcing 12 MB and
//   streaming until the server stops them are answered 401 from their
//   headers and cut, their bodies never buffered; 120 POSTs with a known AK
//   but a bogus signature (which needs the body) are held to one shared
//   budget of buffered bytes (429 beyond it) and a body deadline (408). The
//   peak RSS stays far below what buffering them would take, and a signed
//   request is answered while they stall.
// - Slow requests: headers or a body that stop arriving are cut with 408
//   SMS.0203 after the deadline (shortened here with
//   FERRY_CP_HEADERS_TIMEOUT_MS / FERRY_CP_BODY_TIMEOUT_MS).
// - The lock: a restart right after kill -9 works, also when the lock file
//   names a live process that is not a control plane (a reused PID); a
//   second instance on the same directory is refused, naming the first.
// - Temporary snapshots a crash left in the store are removed at start.
// - POST and PUT refuse a name that is not valid UTF-8 alike.
// After each attack the same process answers a legitimate signed request.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../../src/sms/aksk-signer.js';
import { errorBodySchema } from '../../../src/sms/schemas/index.js';
import { runFerry } from '../../helpers/cli.js';
import { memoryBytes } from '../../helpers/proc.js';
import { removeDir, sdkDate, startLocalCp, TEST_AK, TEST_SK, type LocalCp } from '../../helpers/control-plane.js';
import { EXAMPLES } from '../../fixtures/sms-request-examples.js';

const MiB = 1024 * 1024;
const BODY_TIMEOUT_MS = 4000;
const HEADERS_TIMEOUT_MS = 3000;
/** Each attacker announces this much, the most a JSON body may be. */
const ANNOUNCED = 12 * 1000 * 1000;
/** Generous: buffering the attack as before took the process from 129 MiB to 1.9 GB. */
const RSS_GROWTH_BOUND = 300 * MiB;

let dir: string;
let cp: LocalCp;
let port: number;
let baselineRss: number;

interface Outcome {
  status?: number;
  body?: { error_code?: string };
  /** The server closed the connection (false: we gave up waiting). */
  closedByServer: boolean;
  bodyBytesSent: number;
}

interface Attacker {
  socket: TLSSocket;
  outcome: Promise<Outcome>;
  /** True once the server's answer began to arrive (or the connection closed). */
  done: boolean;
}

/**
 * One raw HTTPS request: `head` (request line and headers), then up to
 * `bodyBytes` of body written as fast as the server takes it, then nothing:
 * the connection stays open, stalled, until the server answers and closes it
 * (or `giveUpMs` passes).
 */
function attack(head: string, bodyBytes: number, giveUpMs = 30_000): Attacker {
  const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  const a: Attacker = { socket, done: false, outcome: undefined as unknown as Promise<Outcome> };
  a.outcome = new Promise<Outcome>((resolve) => {
    let received = Buffer.alloc(0);
    let sent = 0;
    let closed = false;
    const giveUp = setTimeout(() => socket.destroy(), giveUpMs);
    socket.on('data', (b: Buffer) => {
      received = Buffer.concat([received, b]);
      a.done = true;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(giveUp);
      closed = true;
      a.done = true;
      const text = received.toString('utf8');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
      const split = text.indexOf('\r\n\r\n');
      let body: Outcome['body'];
      try {
        body = split < 0 ? undefined : JSON.parse(text.slice(split + 4));
      } catch {
        body = undefined;
      }
      resolve({ status: status ? Number(status) : undefined, body, closedByServer: received.length > 0 || socket.readableEnded, bodyBytesSent: sent });
    });
    socket.once('secureConnect', async () => {
      socket.write(head);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      while (sent < bodyBytes && !closed && !socket.destroyed) {
        const n = Math.min(chunk.length, bodyBytes - sent);
        sent += n;
        if (!socket.write(chunk.subarray(0, n))) {
          await new Promise<void>((r) => {
            const go = () => {
              socket.off('drain', go);
              socket.off('close', go);
              r();
            };
            socket.on('drain', go);
            socket.on('close', go);
          });
        }
      }
    });
  });
  return a;
}

function postHead(headers: Record<string, string>, path = '/v3/sources'): string {
  const lines = Object.entries({ Host: `127.0.0.1:${port}`, 'Content-Type': 'application/json', ...headers }).map(([k, v]) => `${k}: ${v}`);
  return `POST ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/** The headers of a request signed with a known AK whose signature is wrong: only the body could tell. */
function knownAkBogusSignature(): Record<string, string> {
  return {
    'X-Sdk-Date': sdkDate(new Date()),
    Authorization: `SDK-HMAC-SHA256 Access=${TEST_AK}, SignedHeaders=content-type;host;x-sdk-date, Signature=${'0'.repeat(64)}`,
    'Content-Length': String(ANNOUNCED),
  };
}

async function expectServing(): Promise<void> {
  expect(cp.child.exitCode).toBeNull();
  const r = await cp.call('GET', '/v3/sources', undefined, { query: { limit: 1 } });
  expect(r.status).toBe(200);
}

function expectSmsError(o: Outcome, status: number, code: string): void {
  expect(o.status, JSON.stringify(o)).toBe(status);
  expect(errorBodySchema.parse(o.body).error_code).toBe(code);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-cp-hostile-'));
  cp = await startLocalCp({
    dataDir: join(dir, 'data'),
    env: { FERRY_CP_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS), FERRY_CP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS) },
  });
  port = Number(new URL(cp.url).port);
  await expectServing();
  baselineRss = memoryBytes(cp.child.pid!, 'VmRSS');
});

afterAll(async () => {
  await cp?.stop();
  if (dir) removeDir(dir);
});

describe('control plane under hostile requests', () => {
  it('answers 150 unsigned 12 MB POSTs from their headers (401) without buffering their bodies', async () => {
    const attackers = Array.from({ length: 150 }, () => attack(postHead({ 'Content-Length': String(ANNOUNCED) }), ANNOUNCED - 1));
    // A legitimate agent is served in the middle of it.
    await expectServing();
    const outcomes = await Promise.all(attackers.map((a) => a.outcome));
    for (const o of outcomes) {
      expect(o.closedByServer).toBe(true);
      expectSmsError(o, 401, 'SMS.6522');
    }
    const peak = memoryBytes(cp.child.pid!, 'VmHWM');
    const sent = outcomes.reduce((n, o) => n + o.bodyBytesSent, 0);
    console.log(`unsigned: baseline RSS ${(baselineRss / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB; attackers got ${(sent / MiB).toFixed(0)} MiB onto the wire before being cut`);
    expect(peak - baselineRss).toBeLessThan(RSS_GROWTH_BOUND);
    await expectServing();
  });

  it('holds bodies whose signature needs them to a shared budget (429) and a deadline (408)', async () => {
    const attackers = Array.from({ length: 120 }, () => attack(postHead(knownAkBogusSignature()), ANNOUNCED - 1));
    // Wait until all but the few the budget admitted have been answered
    // (refused), then ask while those few are still stalled on their last byte.
    while (attackers.filter((a) => !a.done).length > 10) await new Promise((r) => setTimeout(r, 20));
    const stalled = attackers.filter((a) => !a.done).length;
    await expectServing();
    const stillStalled = attackers.filter((a) => !a.done).length;
    const outcomes = await Promise.all(attackers.map((a) => a.outcome));
    const refused = outcomes.filter((o) => o.status === 429);
    const timedOut = outcomes.filter((o) => o.status === 408);
    console.log(`known AK: ${refused.length} refused (429), ${timedOut.length} cut after the body deadline (408); ${stalled} stalled when the signed GET went out, ${stillStalled} when it was answered`);
    for (const o of refused) expectSmsError(o, 429, 'SMS.0201');
    for (const o of timedOut) expectSmsError(o, 408, 'SMS.0203');
    expect(refused.length + timedOut.length).toBe(attackers.length);
    // 64 MiB of budget holds five 12 MB bodies at a time: some were read
    // (until the deadline cut them), most were refused.
    expect(timedOut.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(stillStalled).toBeGreaterThan(0);
    const peak = memoryBytes(cp.child.pid!, 'VmHWM');
    console.log(`known AK: peak RSS ${(peak / MiB).toFixed(0)} MiB`);
    expect(peak - baselineRss).toBeLessThan(RSS_GROWTH_BOUND);
    await expectServing();
  });

  it('cuts slow headers and a slow body of an authenticated request with 408 SMS.0203', async () => {
    const slowHeaders = attack(`POST /v3/sources HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Sdk-Date: `, 0);
    const body = Buffer.from(JSON.stringify(EXAMPLES.register.body));
    const url = `${cp.url}/v3/sources`;
    const declared = signRequest(
      { method: 'POST', url, headers: { 'Content-Type': 'application/json', 'X-Sdk-Content-Sha256': createHash('sha256').update(body).digest('hex') } },
      { ak: TEST_AK, sk: TEST_SK },
    );
    const { host: _host, ...headers } = declared;
    // Fully authenticated from its headers, then half of the body and silence.
    const slowBody = attack(postHead({ ...headers, 'Content-Length': String(body.length) }), Math.floor(body.length / 2));
    const [h, b] = await Promise.all([slowHeaders.outcome, slowBody.outcome]);
    expectSmsError(h, 408, 'SMS.0203');
    expectSmsError(b, 408, 'SMS.0203');
    expect(h.closedByServer && b.closedByServer).toBe(true);
    await expectServing();
  });

  it('refuses a source name that is not UTF-8 on POST as on PUT, and stores nothing', async () => {
    const placeholder = 'NAME-PLACEHOLDER';
    /** The body as JSON, with the name's placeholder replaced by bytes that are not UTF-8 ("n\xff\xfeo"). */
    const bad = (body: unknown): Buffer => {
      const [head, tail] = JSON.stringify(body).split(placeholder) as [string, string];
      return Buffer.concat([Buffer.from(head), Buffer.from([0x6e, 0xff, 0xfe, 0x6f]), Buffer.from(tail)]);
    };
    const before = (await cp.call('GET', '/v3/sources', undefined, { query: { limit: 200 } })).body.count as number;
    const post = await cp.call('POST', '/v3/sources', undefined, { raw: bad({ ...EXAMPLES.register.body, name: placeholder }) });
    expect(post.status, JSON.stringify(post.body)).toBe(400);
    expect(post.body.error_code).toBe('SMS.6010');
    const after = await cp.call('GET', '/v3/sources', undefined, { query: { limit: 200 } });
    expect(after.body.count).toBe(before);
    expect(JSON.stringify(after.body)).not.toContain('\ufffd');

    const ok = await cp.call('POST', '/v3/sources', EXAMPLES.register.body);
    expect(ok.status).toBe(200);
    const put = await cp.call('PUT', `/v3/sources/${ok.body.id}`, undefined, { raw: bad({ name: placeholder }) });
    expect(put.status).toBe(400);
    expect(put.body.error_code).toBe('SMS.6010');
    const shown = await cp.call('GET', `/v3/sources/${ok.body.id}`);
    expect(shown.body.name).toBe(EXAMPLES.register.body.name);
  });
});

describe('control plane data directory', () => {
  it('restarts at once after kill -9, even when the lock file names a live process; refuses a second instance', async () => {
    const data = join(dir, 'lock');
    let first = await startLocalCp({ dataDir: data });
    // No waiting for the exit: the kernel drops the lock with the process.
    first.child.kill('SIGKILL');
    const second = await startLocalCp({ dataDir: data });
    await first.kill();
    expect((await second.call('GET', '/v3/sources')).status).toBe(200);
    const refused = await runFerry(['control-plane', '--listen', '127.0.0.1:0', '--data', data, '--ak', TEST_AK, '--sk', TEST_SK]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/FERRY_LOCKED/);
    expect(refused.stderr).toContain(`pid ${second.child.pid}`);
    await second.kill();

    // A PID file would be fooled by a reused PID; the lock file now names
    // this test's own (live) process, and the next start does not care.
    writeFileSync(join(data, 'control-plane.lock'), `${process.pid}\n`);
    first = await startLocalCp({ dataDir: data });
    expect((await first.call('GET', '/v3/sources')).status).toBe(200);
    await first.stop();
  });

  it('removes the temporary snapshots a crash during compaction left, and nothing else', async () => {
    const data = join(dir, 'tmpfiles');
    const store = join(data, 'store');
    mkdirSync(store, { recursive: true, mode: 0o700 });
    const leftovers = ['.snapshot.json.0123456789ab.tmp', '.snapshot.json.ba9876543210.tmp'];
    const others = ['.snapshot.json.notours.tmp', 'notes.tmp', '.journal.log.0123456789ab.tmp'];
    for (const f of [...leftovers, ...others]) writeFileSync(join(store, f), '{"version":1,"seq":');
    const c = await startLocalCp({ dataDir: data });
    try {
      for (const f of leftovers) expect(existsSync(join(store, f)), f).toBe(false);
      for (const f of others) expect(existsSync(join(store, f)), f).toBe(true);
      expect(readdirSync(store).filter((f) => /^\.snapshot\.json\.[0-9a-f]{12}\.tmp$/.test(f))).toEqual([]);
      expect((await c.call('GET', '/v3/sources')).status).toBe(200);
    } finally {
      await c.stop();
    }
  });
});
