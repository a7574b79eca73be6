// A plain-HTTP forwarding proxy between the agent and a local control plane
// (both real processes), for end-to-end tests. It lets a test keep one
// endpoint across control-plane restarts, hand the agent a command the
// control plane would never queue (malformed, unknown), and make the
// control plane's answer to a token "expired" (401 SMS.6521) once, so the
// agent must renew it. Everything else passes through unchanged.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

export interface SeenRequest {
  method: string;
  path: string;
  token?: string;
  body?: unknown;
  status?: number;
}

export class CpProxy {
  upstream: string | null;
  readonly seen: SeenRequest[] = [];
  /** Bodies to answer the next GET …/command polls with, instead of the control plane's. */
  readonly inject: unknown[] = [];
  /** command_result bodies for injected commands (answered here, not forwarded). */
  readonly injectedResults: Array<{ command_name?: string; result?: string; result_detail?: Record<string, unknown> }> = [];
  private expireTokens = new Set<string>();
  private awaitingInjectedResult = 0;
  private server!: Server;
  url = '';

  constructor(upstream: string) {
    this.upstream = upstream;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res).catch((e) => {
      res.statusCode = 502;
      res.end(JSON.stringify({ error_code: 'PROXY', error_msg: String(e) }));
    }));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next request carrying the token in use now gets 401 "expired". */
  expireCurrentToken(): string | undefined {
    const t = [...this.seen].reverse().find((r) => r.token)?.token;
    if (t) this.expireTokens.add(t);
    return t;
  }

  tokens(): string[] {
    return [...new Set(this.seen.map((r) => r.token).filter((t): t is string => !!t))];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const path = req.url ?? '/';
    const token = req.headers['x-auth-token'] as string | undefined;
    const rec: SeenRequest = { method: req.method!, path, ...(token && { token }) };
    if ((req.headers['content-type'] ?? '').includes('json') && raw.length) {
      try {
        rec.body = JSON.parse(raw.toString('utf8'));
      } catch {
        rec.body = raw.toString('utf8');
      }
    }
    this.seen.push(rec);
    const reply = (status: number, body: unknown) => {
      rec.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (token && this.expireTokens.has(token)) {
      this.expireTokens.delete(token);
      return reply(401, { error_code: 'SMS.6521', error_msg: 'Token-based authentication failed: the token has expired; request a new one.' });
    }
    if (req.method === 'GET' && /\/v3\/sources\/[^/]+\/command$/.test(path) && this.inject.length > 0) {
      this.awaitingInjectedResult++;
      return reply(200, this.inject.shift());
    }
    if (req.method === 'POST' && /\/command_result$/.test(path) && this.awaitingInjectedResult > 0) {
      this.awaitingInjectedResult--;
      this.injectedResults.push(rec.body as never);
      return reply(200, {});
    }
    if (!this.upstream) return reply(502, { error_code: 'PROXY', error_msg: 'control plane down' });
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.connection;
    delete headers['content-length'];
    let up;
    try {
      up = await request(this.upstream + path, { method: req.method as 'GET', headers, body: raw.length ? raw : undefined });
    } catch {
      // The control plane is down: behave like it (connection reset).
      rec.status = 0;
      req.socket.destroy();
      return;
    }
    const body = Buffer.from(await up.body.arrayBuffer());
    rec.status = up.statusCode;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(up.headers)) if (typeof v === 'string' && k !== 'connection' && k !== 'transfer-encoding' && k !== 'keep-alive') out[k] = v;
    res.writeHead(up.statusCode, out);
    res.end(body);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
