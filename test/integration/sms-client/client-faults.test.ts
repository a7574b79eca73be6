// The control-plane client against real HTTP(S) servers on 127.0.0.1 that
// misbehave: 500, 429 with Retry-After, malformed JSON, bodies of the wrong
// shape, hanging, resetting the connection, 401 until the token is renewed,
// a skewed Date header, bad certificates, a CONNECT proxy. Every failure must
// be a typed SmsApiError after a bounded number of attempts, with no secret in
// it (vitest fails the run on any unhandled rejection).

import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyRequest } from '../../../src/sms/aksk-signer.js';
import { PasswordTokenAuth } from '../../../src/sms-client/auth/token-auth.js';
import { ControlPlaneClient, SmsApiError, type ControlPlaneOptionsInput } from '../../../src/sms-client/client.js';
import { controlPlaneOptionsSchema } from '../../../src/sms-client/client-options.js';
import { createDispatcher } from '../../../src/sms-client/dispatcher.js';
import { Transport } from '../../../src/sms-client/transport.js';
import { createLogger } from '../../../src/platform/log.js';
import { loadOrCreateTlsIdentity, type TlsIdentity } from '../../../src/platform/tls-identity.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string, n: number) => void;

/** A server whose behaviour each test sets; it records every request. */
class FaultServer {
  seen: Seen[] = [];
  handler: Handler = (_q, res) => json(res, 200, {});
  readonly sockets = new Set<Socket>();
  constructor(readonly server: Server) {
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('secureConnection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        this.seen.push({ method: req.method!, url: req.url!, headers: req.headers, body, at: Date.now() });
        this.handler(req, res, body, this.seen.length);
      });
    });
  }
  async listen(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const port = (this.server.address() as AddressInfo).port;
    return `http://127.0.0.1:${port}`;
  }
  reset(): void {
    this.seen = [];
    this.handler = (_q, res) => json(res, 200, {});
    for (const s of this.sockets) s.destroy();
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
    await once(this.server, 'close').catch(() => undefined);
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const FAST = { max_attempts: 3, max_elapsed_ms: 20_000, base_delay_ms: 1, max_delay_ms: 10 };
const SECRET_TOKEN = 'tok-SECRET-0123456789';
const PASSWORD = 'pw-SECRET-9876543210';
const SK = 'sk-SECRET-abcdefghijkl';

let http: FaultServer;
let httpUrl: string;
const clients: ControlPlaneClient[] = [];

function client(extra: Partial<ControlPlaneOptionsInput> = {}, endpoint = httpUrl): ControlPlaneClient {
  const c = new ControlPlaneClient({
    endpoint,
    auth: { type: 'token', token: SECRET_TOKEN },
    retry: FAST,
    headers_timeout_ms: 300,
    body_timeout_ms: 300,
    connect_timeout_ms: 1000,
    ...extra,
  } as ControlPlaneOptionsInput);
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<SmsApiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SmsApiError);
    return e as SmsApiError;
  }
  throw new Error('expected the call to fail');
}

function assertNoSecrets(err: unknown): void {
  const text = inspect(err, { depth: 6 }) + JSON.stringify(err);
  for (const s of [SECRET_TOKEN, PASSWORD, SK]) expect(text).not.toContain(s);
}

beforeAll(async () => {
  http = new FaultServer(createHttpServer({ keepAliveTimeout: 5000 }));
  httpUrl = await http.listen();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  http.reset();
});
afterAll(async () => {
  await http.close();
});

describe('retries', () => {
  it('retries 500 a bounded number of times, then throws the SMS error from the body', async () => {
    http.handler = (_q, res) => json(res, 500, { error_code: 'SMS.0504', error_msg: 'Failed to obtain task details. Cause: db' });
    const err = await failure(client().getTask('t1'));
    expect(err.code).toBe('SMS.0504');
    expect(err.status).toBe(500);
    expect(err.errorMsg).toContain('Failed to obtain task details');
    expect(err.attempts).toBe(3);
    expect(http.seen).toHaveLength(3);
    assertNoSecrets(err);
  });

  it('recovers when a 503 is followed by success', async () => {
    http.handler = (_q, res, _b, n) => (n === 1 ? json(res, 503, {}) : json(res, 200, { id: 't1', name: 'task' }));
    await expect(client().getTask('t1')).resolves.toMatchObject({ id: 't1', name: 'task' });
    expect(http.seen).toHaveLength(2);
  });

  it('honours Retry-After on 429', async () => {
    http.handler = (_q, res, _b, n) => (n === 1 ? json(res, 429, { error_code: 'APIGW.0308' }, { 'Retry-After': '1' }) : json(res, 200, { speed_limit: [] }));
    await expect(client().getSpeedLimit('t1')).resolves.toEqual({ speed_limit: [] });
    expect(http.seen).toHaveLength(2);
    expect(http.seen[1]!.at - http.seen[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('gives up at once when Retry-After exceeds the retry budget', async () => {
    http.handler = (_q, res) => json(res, 429, {}, { 'Retry-After': '3600' });
    const err = await failure(client().getSpeedLimit('t1'));
    expect(err.status).toBe(429);
    expect(err.message).toContain('Retry-After');
    expect(http.seen).toHaveLength(1);
  });

  it('does not retry a 4xx other than 401', async () => {
    http.handler = (_q, res) => json(res, 404, { error_code: 'SMS.0505', error_msg: 'Task t9 not found.' });
    const err = await failure(client().getTask('t9'));
    expect(err).toMatchObject({ code: 'SMS.0505', status: 404, errorCode: 'SMS.0505', attempts: 1 });
    expect(http.seen).toHaveLength(1);
  });

  it('keeps the error body details and error_param', async () => {
    http.handler = (_q, res) =>
      json(res, 403, { error_code: 'SMS.9004', error_msg: 'no permission', error_param: ['x'], details: [{ error_code: 'SMS.9004', error_msg: 'denied' }] });
    const err = await failure(client().listSources());
    expect(err.errorDetails).toEqual([{ error_code: 'SMS.9004', error_msg: 'denied' }]);
    expect(err.errorParam).toEqual(['x']);
  });

  it('does not retry a task creation after a 500 (it may have been created)', async () => {
    http.handler = (_q, res) => json(res, 500, {});
    const err = await failure(
      client().createTask({
        name: 't',
        type: 'MIGRATE_BLOCK',
        os_type: 'LINUX',
        source_server: { id: 's1' },
        target_server: { vm_id: 'v', name: 'n', disks: [] },
        region_name: 'r',
        region_id: 'r',
        project_name: 'p',
        project_id: 'p',
      }),
    );
    expect(err.code).toBe('FERRY_HTTP_500');
    expect(http.seen).toHaveLength(1);
  });
});

describe('bad responses', () => {
  it('malformed JSON is SMS.1702 and not retried', async () => {
    http.handler = (_q, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"id": "t1", ');
    };
    const err = await failure(client().getTask('t1'));
    expect(err.code).toBe('SMS.1702');
    expect(http.seen).toHaveLength(1);
  });

  it('a body of the wrong shape names the field', async () => {
    http.handler = (_q, res) => json(res, 200, { id: 't1', sub_tasks: [{ name: 'MIGRATE_LINUX_BLOCK', progress: 'half' }] });
    const err = await failure(client().getTask('t1'));
    expect(err.code).toBe('FERRY_BAD_RESPONSE');
    expect(err.message).toContain('sub_tasks.0.progress');

    http.handler = (_q, res) => json(res, 200, { count: 2 });
    expect((await failure(client().listTasks())).message).toContain('tasks');
  });

  it('keeps a path prefix of the endpoint and encodes ids', async () => {
    http.handler = (_q, res) => json(res, 200, { id: 'x' });
    await client({}, `${httpUrl}/sms/`).getTask('a b/c');
    expect(http.seen[0]!.url).toBe('/sms/v3/tasks/a%20b%2Fc');
  });

  it('unknown fields are tolerated and kept', async () => {
    http.handler = (_q, res) => json(res, 200, { id: 't1', state: 'RUNNING', brand_new: { x: 1 } });
    const task = await client().getTask('t1');
    expect(task.state).toBe('RUNNING');
    expect((task as Record<string, unknown>).brand_new).toEqual({ x: 1 });
  });

  it('an empty command body means no command', async () => {
    http.handler = (_q, res) => {
      res.writeHead(200);
      res.end();
    };
    await expect(client().getCommand('s1')).resolves.toEqual({});
  });

  it('a malformed command still reaches the agent; a non-object command body does not', async () => {
    http.handler = (_q, res) => json(res, 200, { command_name: 42, command_param: 'x' });
    await expect(client().getCommand('s1')).resolves.toEqual({ command_name: 42, command_param: 'x' });
    http.handler = (_q, res) => json(res, 200, ['START']);
    expect((await failure(client().getCommand('s1'))).code).toBe('FERRY_BAD_RESPONSE');
  });

  it('a response over the size cap is SMS.0426', async () => {
    http.handler = (_q, res) => json(res, 200, { id: 't1', pad: 'x'.repeat(4096) });
    const err = await failure(client({ max_response_bytes: 1024 }).getTask('t1'));
    expect(err.code).toBe('SMS.0426');
  });
});

describe('network faults', () => {
  it('a server that never answers times out (SMS.0203) after bounded attempts', async () => {
    http.handler = () => undefined; // hang
    const err = await failure(client().getTask('t1'));
    expect(err.code).toBe('SMS.0203');
    expect(err.attempts).toBe(3);
    expect(http.seen).toHaveLength(3);
  });

  it('a body that stalls half way times out (SMS.0203)', async () => {
    http.handler = (_q, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      res.write('{"id": "t1", ');
    };
    const err = await failure(client().getTask('t1'));
    expect(err.code).toBe('SMS.0203');
    expect(http.seen).toHaveLength(3);
  });

  it('close() does not wait for a hanging call beyond its grace period', async () => {
    http.handler = () => undefined;
    const c = new ControlPlaneClient({ endpoint: httpUrl, auth: { type: 'token', token: 'x' }, headers_timeout_ms: 60_000 });
    const pending = failure(c.getTask('t1'));
    await new Promise((r) => setTimeout(r, 50));
    await c.close(100);
    expect((await pending).code).toBe('FERRY_ABORTED');
  });

  it('a reset connection is SMS.0301 after bounded attempts', async () => {
    http.handler = (req) => req.socket.destroy();
    const err = await failure(client().getCommand('s1'));
    expect(err.code).toBe('SMS.0301');
    expect(err.attempts).toBe(3);
    expect(http.seen).toHaveLength(3);
  });

  it('a refused connection is SMS.0301', async () => {
    const s = createHttpServer();
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as AddressInfo).port;
    s.close();
    await once(s, 'close');
    const err = await failure(client({}, `http://127.0.0.1:${port}`).getTask('t1'));
    expect(err.code).toBe('SMS.0301');
    expect(err.retryable).toBe(true);
    expect(err.attempts).toBe(3);
  });

  it('an abort ends a hanging call and a retry wait', async () => {
    http.handler = () => undefined;
    const ac = new AbortController();
    const c = client({ headers_timeout_ms: 60_000 });
    const p = failure(c.getTask('t1', { signal: ac.signal }));
    setTimeout(() => ac.abort(), 50);
    expect((await p).code).toBe('FERRY_ABORTED');

    http.handler = (_q, res) => json(res, 503, {}, { 'Retry-After': '10' });
    const shutdown = new AbortController();
    const c2 = new ControlPlaneClient({ endpoint: httpUrl, auth: { type: 'token', token: 'x' } }, { signal: shutdown.signal });
    clients.push(c2);
    const p2 = failure(c2.getTask('t1'));
    setTimeout(() => shutdown.abort(), 100);
    expect((await p2).code).toBe('FERRY_ABORTED');
  });
});

describe('authentication', () => {
  it('renews the token once on a 401 and succeeds', async () => {
    let issued = 0;
    http.handler = (req, res, body) => {
      if (req.url === '/v3/auth/tokens') {
        expect(JSON.parse(body).auth.identity.password.user).toMatchObject({ name: 'ops', password: PASSWORD, domain: { name: 'dom' } });
        issued++;
        res.setHeader('X-Subject-Token', `${SECRET_TOKEN}-${issued}`);
        return json(res, 201, { token: { expires_at: new Date(Date.now() + 86_400_000).toISOString(), methods: ['password'] } });
      }
      if (req.headers['x-auth-token'] === `${SECRET_TOKEN}-1`) return json(res, 401, { error_code: 'APIGW.0301', error_msg: 'token expired' });
      return json(res, 200, { id: 't1' });
    };
    const c = client({ auth: { type: 'password', user: 'ops', password: PASSWORD, domain: 'dom' } });
    await expect(c.getTask('t1')).resolves.toMatchObject({ id: 't1' });
    expect(issued).toBe(2);
    expect(http.seen.map((s) => s.url)).toEqual(['/v3/auth/tokens', '/v3/tasks/t1', '/v3/auth/tokens', '/v3/tasks/t1']);
    // the renewed token is cached
    await c.getTask('t1');
    expect(issued).toBe(2);
  });

  it('logs retries and renewals without secrets', async () => {
    const lines: string[] = [];
    const logger = createLogger({ name: 'cp-test', level: 'debug', destination: { write: (s: string) => lines.push(s) } as never });
    http.handler = (req, res, _b, n) => {
      if (req.url === '/v3/auth/tokens') {
        res.setHeader('X-Subject-Token', `${SECRET_TOKEN}-${n}`);
        return json(res, 201, { token: {} });
      }
      if (n === 2) return json(res, 401, {});
      if (n === 4) return json(res, 500, { error_msg: `echo ${req.headers['x-auth-token']}` });
      return json(res, 200, { id: 't1' });
    };
    const c = new ControlPlaneClient(
      { endpoint: httpUrl, auth: { type: 'password', user: 'ops', password: PASSWORD, domain: 'dom' }, retry: FAST },
      { logger },
    );
    clients.push(c);
    await c.getTask('t1');
    expect(lines.join('')).toContain('retrying');
    expect(lines.join('')).toContain('credentials renewed');
    for (const s of [SECRET_TOKEN, PASSWORD]) expect(lines.join('')).not.toContain(s);
  });

  it('a 401 that persists after renewal is an error without secrets', async () => {
    http.handler = (req, res) => {
      if (req.url === '/v3/auth/tokens') {
        res.setHeader('X-Subject-Token', SECRET_TOKEN);
        return json(res, 201, { token: {} });
      }
      return json(res, 401, { error_msg: `bad token ${req.headers['x-auth-token']}` });
    };
    const err = await failure(client({ auth: { type: 'password', user: 'ops', password: PASSWORD, domain: 'dom' } }).getTask('t1'));
    expect(err.status).toBe(401);
    expect(http.seen.filter((s) => s.url === '/v3/auth/tokens')).toHaveLength(2);
    assertNoSecrets(err);
  });

  it('a failing token endpoint is retried once, not once per outer attempt', async () => {
    http.handler = (_q, res) => json(res, 500, { error_code: 'IAM.0001', error_msg: 'iam down' });
    const err = await failure(client({ auth: { type: 'password', user: 'ops', password: PASSWORD, domain: 'dom' } }).getTask('t1'));
    expect(err).toMatchObject({ code: 'IAM.0001', status: 500, path: '/v3/auth/tokens', attempts: 3 });
    expect(http.seen.every((s) => s.url === '/v3/auth/tokens')).toBe(true);
    expect(http.seen).toHaveLength(3);
    assertNoSecrets(err);
  });

  it('renews a token at 90 % of its lifetime', async () => {
    http.handler = (req, res) => {
      res.setHeader('X-Subject-Token', `tok-${http.seen.length}`);
      const now = Date.now();
      res.setHeader('Date', new Date(now).toUTCString());
      json(res, 201, { token: { expires_at: new Date(now + 24 * 3_600_000).toISOString() } });
    };
    const options = controlPlaneOptionsSchema.parse({ endpoint: httpUrl, auth: { type: 'token', token: 'unused' }, retry: FAST });
    const dispatcher = createDispatcher(options);
    try {
      let fake = Date.now();
      const auth = new PasswordTokenAuth(new Transport(options, dispatcher), { user: 'u', password: PASSWORD, domain: 'd' }, () => fake);
      const req = { method: 'GET' as const, url: new URL(httpUrl), headers: {} };
      expect((await auth.authorize(req))['X-Auth-Token']).toBe('tok-1');
      const renewIn = auth.renewAt! - fake;
      expect(renewIn).toBeGreaterThan(21 * 3_600_000);
      expect(renewIn).toBeLessThan(22 * 3_600_000);
      fake += renewIn - 60_000;
      expect((await auth.authorize(req))['X-Auth-Token']).toBe('tok-1');
      fake += 120_000;
      expect((await auth.authorize(req))['X-Auth-Token']).toBe('tok-2');
      expect(auth.fetches).toBe(2);
    } finally {
      await dispatcher.close();
    }
  });

  it('signs with AK/SK so that the server verifies, special characters included', async () => {
    http.handler = (req, res, body) => {
      const v = verifyRequest({ method: req.method!, rawUrl: req.url!, headers: req.headers, body }, (ak) => (ak === 'AK1' ? SK : undefined));
      if (!v.ok) return json(res, 401, { error_code: 'APIGW.0101', error_msg: v.detail });
      if (req.url!.startsWith('/v3/sources?')) return json(res, 200, { count: 0, source_servers: [] });
      return json(res, 200, {});
    };
    const c = client({ auth: { type: 'aksk', ak: 'AK1', sk: SK, project_id: 'p1', security_token: 'st-SECRET-1' } });
    await c.listSources({ name: 'web server/ü+1', limit: 10 });
    await c.reportProgress('t 1/ü', { subtask_name: 'MIGRATE_LINUX_BLOCK', progress: 5, replicatesize: 1, totalsize: 20, process_trace: 'π' });
    await c.deleteSource('s%1', { force: true });
    expect(http.seen).toHaveLength(3);
    expect(http.seen[0]!.headers['x-project-id']).toBe('p1');
    expect(http.seen[2]!.url).toBe('/v3/sources/s%251?force=true');
  });

  it('a wrong SK is SMS.0202; a skewed clock on an auth failure is SMS.0205', async () => {
    http.handler = (req, res, body) => {
      const v = verifyRequest({ method: req.method!, rawUrl: req.url!, headers: req.headers, body }, () => 'the-right-sk');
      json(res, 401, { error_msg: v.ok ? 'ok' : v.detail });
    };
    const err = await failure(client({ auth: { type: 'aksk', ak: 'AK1', sk: SK } }).getTask('t1'));
    expect(err.code).toBe('SMS.0202');
    expect(err.attempts).toBe(1);
    assertNoSecrets(err);

    http.handler = (_q, res) => json(res, 401, {}, { Date: new Date(Date.now() + 3_600_000).toUTCString() });
    const c = client({ auth: { type: 'aksk', ak: 'AK1', sk: SK } });
    const skew = await failure(c.getTask('t1'));
    expect(skew.code).toBe('SMS.0205');
    expect(skew.message).toMatch(/behind/);
    expect(c.clockSkewMs).toBeLessThan(-3_500_000);
  });

  it('rejects an invalid request before sending it', async () => {
    const err = await failure(
      client().reportProgress('t1', { subtask_name: 'MIGRATE_LINUX_BLOCK', progress: 250, replicatesize: 0, totalsize: 0, process_trace: '' }),
    );
    expect(err.code).toBe('SMS.9001');
    expect(err.message).toContain('progress');
    expect(http.seen).toHaveLength(0);
  });
});

describe('TLS and proxy', () => {
  let dir: string;
  let identity: TlsIdentity;
  let https: FaultServer;
  let httpsUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-cpclient-'));
    identity = await loadOrCreateTlsIdentity(dir, { commonName: '127.0.0.1' });
    https = new FaultServer(createHttpsServer({ key: identity.key, cert: identity.cert }));
    https.server.listen(0, '127.0.0.1');
    await once(https.server, 'listening');
    httpsUrl = `https://127.0.0.1:${(https.server.address() as AddressInfo).port}`;
    https.handler = (_q, res) => json(res, 200, { id: 't1' });
  });
  afterAll(async () => {
    await https.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('an untrusted certificate is SMS.0304 and not retried', async () => {
    const err = await failure(client({}, httpsUrl).getTask('t1'));
    expect(err.code).toBe('SMS.0304');
    expect(err.attempts).toBe(1);
  });

  it('a custom CA bundle or a pinned fingerprint is trusted; a wrong pin is SMS.0304', async () => {
    await expect(client({ ca: identity.cert }, httpsUrl).getTask('t1')).resolves.toMatchObject({ id: 't1' });
    await expect(client({ fingerprint: identity.fingerprint }, httpsUrl).getTask('t1')).resolves.toMatchObject({ id: 't1' });
    const err = await failure(client({ fingerprint: 'ab'.repeat(32) }, httpsUrl).getTask('t1'));
    expect(err.code).toBe('SMS.0304');
  });

  /** A CONNECT proxy on 127.0.0.1 (plain or TLS) that records tunnels and Proxy-Authorization. */
  async function startProxy(tlsIdentity?: TlsIdentity) {
    const seen: { target: string; auth?: string }[] = [];
    const state = { refuse: false };
    const server = tlsIdentity ? createHttpsServer({ key: tlsIdentity.key, cert: tlsIdentity.cert }) : createHttpServer();
    const tunnels = new Set<Socket>();
    server.on('connect', (req: IncomingMessage, socket: Socket) => {
      seen.push({ target: req.url!, auth: req.headers['proxy-authorization'] });
      tunnels.add(socket);
      if (state.refuse) {
        socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const [host, port] = req.url!.split(':');
      const upstream = netConnect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
      socket.on('close', () => upstream.destroy());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    return {
      seen,
      state,
      url: `${tlsIdentity ? 'https' : 'http'}://user:${PASSWORD}@127.0.0.1:${port}`,
      close: () => {
        for (const s of tunnels) s.destroy();
        server.close();
      },
    };
  }

  it('tunnels through an HTTP CONNECT proxy with credentials; a refusing proxy is a typed error without secrets', async () => {
    const proxy = await startProxy();
    try {
      await expect(client({ ca: identity.cert, proxy: proxy.url }, httpsUrl).getTask('t1')).resolves.toMatchObject({ id: 't1' });
      expect(proxy.seen).toEqual([{ target: new URL(httpsUrl).host, auth: 'Basic ' + Buffer.from(`user:${PASSWORD}`).toString('base64') }]);
      proxy.state.refuse = true;
      const err = await failure(client({ ca: identity.cert, proxy: proxy.url }, httpsUrl).getTask('t1'));
      expect(err.code).toMatch(/^SMS\.030[14]$/);
      assertNoSecrets(err);
    } finally {
      proxy.close();
    }
  });

  it('tunnels through an HTTPS proxy trusted by proxy_ca', async () => {
    const proxy = await startProxy(identity);
    try {
      await expect(client({ ca: identity.cert, proxy: proxy.url, proxy_ca: identity.cert }, httpsUrl).getTask('t1')).resolves.toMatchObject({ id: 't1' });
      expect(proxy.seen).toHaveLength(1);
      const err = await failure(client({ ca: identity.cert, proxy: proxy.url }, httpsUrl).getTask('t1'));
      expect(err.code).toBe('SMS.0304');
    } finally {
      proxy.close();
    }
  });
});
