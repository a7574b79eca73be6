// The HTTP plumbing of the local control plane: route table, body reading
// with a size cap (streamed to a file for uploads), authentication before
// any handler runs, JSON parsing, and turning every failure into the SMS
// error body. Handlers only see a parsed RequestContext.
//
// What a peer can make us hold is bounded here (BodyLimits): the headers are
// authenticated before a byte of body is read, and a request they do not
// authenticate is answered and its connection closed with the body unread;
// a route without authentication reads at most 64 KiB; JSON bodies lease
// their bytes from one budget shared by all requests (429 beyond it) and
// must be complete within a deadline of seconds (408); uploads go to disk
// and may not pause longer than that deadline. Slow headers and TLS
// handshakes are cut by the server's timeouts (control-plane.ts).

import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { z } from 'zod';
import type { Logger } from '../platform/log.js';
import { ApiError, badRequest } from './api-error.js';
import type { Authenticator, Principal } from './auth.js';
import { BodyBudget, type BodyLease } from './body-budget.js';

/** AK/SK-signed requests may carry at most 12 MB (section 3.2); we use it for every JSON body. */
export const MAX_JSON_BODY = 12 * 1024 * 1024;

export interface RequestContext {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** Parsed JSON body, or undefined when the request had none. */
  body: unknown;
  /** For upload routes: the temporary file holding the body, and its size. */
  upload?: { file: string; bytes: number; sha256: string };
  principal?: Principal;
  requestId: string;
}

export interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** e.g. `/v3/tasks/{task_id}/action` */
  pattern: string;
  handler: (ctx: RequestContext) => Promise<Reply> | Reply;
  /** Default true. */
  auth?: boolean;
  /** Stream the body to a file under `tmpDir` instead of parsing JSON, capped at this many bytes. */
  upload?: { maxBytes: number };
}

interface CompiledRoute extends Route {
  segments: string[];
}

/**
 * Bounds on what a request may make the control plane hold. The defaults are
 * the product's; FERRY_CP_BODY_TIMEOUT_MS shortens the body deadline (tests).
 */
export interface BodyLimits {
  /** Largest body of a route that needs no authentication (POST /v3/auth/tokens: a few hundred bytes). */
  maxUnauthenticatedBody: number;
  /** Bytes of JSON bodies buffered at once over all requests in flight (see body-budget.ts). */
  maxBufferedBodies: number;
  /** A JSON body must be complete this long after its headers; an upload may pause this long between chunks. */
  bodyTimeoutMs: number;
}

export const DEFAULT_BODY_LIMITS: BodyLimits = {
  maxUnauthenticatedBody: 64 * 1024,
  maxBufferedBodies: 64 * 1024 * 1024,
  bodyTimeoutMs: 20_000,
};

export interface HttpHandlerOptions {
  routes: Route[];
  authenticator: Authenticator;
  tmpDir: string;
  log: Logger;
  limits?: Partial<BodyLimits>;
}

export function createHttpHandler(options: HttpHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const compiled: CompiledRoute[] = options.routes.map((r) => ({ ...r, segments: r.pattern.split('/').filter(Boolean) }));
  const limits: BodyLimits = { ...DEFAULT_BODY_LIMITS, ...options.limits };
  const budget = new BodyBudget(limits.maxBufferedBodies);
  return (req, res) => {
    const requestId = randomBytes(16).toString('hex');
    const started = Date.now();
    const lease = budget.lease();
    handle(req, requestId, compiled, options, limits, lease).then(
      (reply) => send(req, res, reply, requestId),
      (err: unknown) => {
        if (!(err instanceof ApiError)) {
          options.log.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err), requestId }, 'request failed');
        }
        const e = err instanceof ApiError ? err : new ApiError(500, 'SMS.6000', 'Service error: the control plane failed to process the request; see its log.');
        send(req, res, { status: e.status, body: e.body(), headers: e.status === 429 ? { 'Retry-After': '1' } : undefined }, requestId);
      },
    ).finally(() => {
      lease.release();
      options.log.debug({ method: req.method, path: (req.url ?? '').split('?')[0], status: res.statusCode, ms: Date.now() - started, requestId }, 'request');
    });
  };
}

async function handle(
  req: IncomingMessage,
  requestId: string,
  routes: CompiledRoute[],
  options: HttpHandlerOptions,
  limits: BodyLimits,
  lease: BodyLease,
): Promise<Reply> {
  const url = new URL(req.url ?? '/', 'http://local');
  const segments = url.pathname.split('/').filter(Boolean).map(safeDecode);
  let pathMatched = false;
  let route: CompiledRoute | undefined;
  let params: Record<string, string> = {};
  for (const r of routes) {
    const p = match(r.segments, segments);
    if (!p) continue;
    pathMatched = true;
    if (r.method === req.method) {
      route = r;
      params = p;
      break;
    }
  }
  // Every early answer below leaves the body unread: send() closes the
  // connection after answering when the body has not fully arrived, so
  // nothing a refused request sends is ever buffered or even drained.
  if (!route) {
    if (pathMatched) throw new ApiError(405, 'SMS.9001', `method ${req.method} is not allowed on ${url.pathname}`);
    throw new ApiError(404, 'SMS.9001', `no such API: ${req.method} ${url.pathname}`);
  }
  for (const v of Object.values(params)) {
    if (v.length === 0 || v.length > 255) throw badRequest('SMS.9001', 'Invalid parameters: path IDs must be 1 to 255 characters');
  }

  let bodyBuf: Buffer | undefined;
  let upload: RequestContext['upload'];
  const signed = { method: req.method!, rawUrl: req.url ?? '/', headers: req.headers };
  try {
    const ctx: RequestContext = {
      method: req.method!,
      path: url.pathname,
      params,
      query: url.searchParams,
      headers: req.headers,
      body: undefined,
      requestId,
    };
    // Authenticate from the headers before taking any body: a token or a
    // signature over a declared X-Sdk-Content-Sha256 completely (an upload
    // must declare one; it is checked against what actually arrives below),
    // any other AK/SK request as far as the headers go (format, date, known
    // AK). A stranger's body is never read.
    if (route.auth !== false) ctx.principal = options.authenticator.authenticateHeaders(signed, { upload: !!route.upload });
    if (route.upload) {
      upload = await receiveToFile(req, options.tmpDir, route.upload.maxBytes, limits.bodyTimeoutMs);
      ctx.upload = upload;
      const declared = req.headers['x-sdk-content-sha256'];
      if (ctx.principal?.kind === 'aksk' && typeof declared === 'string' && declared !== 'UNSIGNED-PAYLOAD' && declared.toLowerCase() !== upload.sha256) {
        throw new ApiError(401, 'SMS.0202', 'AK/SK authentication failed: X-Sdk-Content-Sha256 does not match the body.');
      }
    } else {
      bodyBuf = await readBody(req, route.auth === false ? limits.maxUnauthenticatedBody : MAX_JSON_BODY, lease, limits.bodyTimeoutMs);
      if (route.auth !== false) {
        ctx.principal = options.authenticator.authenticate({ ...signed, body: bodyBuf }, createHash('sha256').update(bodyBuf).digest('hex'));
      }
    }
    if (bodyBuf && bodyBuf.length > 0) {
      const ct = String(req.headers['content-type'] ?? '');
      if (!/^application\/json\b/i.test(ct)) throw badRequest('SMS.6016', 'The header type must be application/json.');
      let text: string;
      try {
        // JSON is UTF-8 (RFC 8259): invalid bytes are refused here, not
        // turned into U+FFFD and stored (every route decodes the same way).
        text = UTF8.decode(bodyBuf);
      } catch {
        throw badRequest('SMS.6010', 'The request body is not in the JSON format: it is not valid UTF-8.');
      }
      try {
        ctx.body = JSON.parse(text);
      } catch (e) {
        throw badRequest('SMS.6010', `The request body is not in the JSON format: ${(e as Error).message}`);
      }
    }
    return await route.handler(ctx);
  } finally {
    if (upload) await unlink(upload.file).catch(() => {});
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function match(pattern: string[], path: string[]): Record<string, string> | undefined {
  if (pattern.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith('{') && p.endsWith('}')) params[p.slice(1, -1)] = path[i]!;
    else if (p !== path[i]) return undefined;
  }
  return params;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Content-Length as a number, undefined when absent (chunked). Node's parser refuses malformed values. */
function contentLength(req: IncomingMessage): number | undefined {
  const v = req.headers['content-length'];
  return v === undefined ? undefined : Number(v);
}

const tooLong = (max: number) => new ApiError(413, 'SMS.6014', `The request body is too long: at most ${max} bytes.`);
const busy = (budget: number) =>
  new ApiError(429, 'SMS.0201', `Network busy: the control plane is already receiving ${Math.round(budget / 1048576)} MiB of request bodies; retry in a moment.`);
// The client went away: nothing to answer, and no failure of ours to log.
const cutShort = () => badRequest('SMS.9001', 'Invalid request: the client closed the connection before sending the whole body.');
const slowBody = (ms: number, what: string) =>
  new ApiError(408, 'SMS.0203', `Connection to the control plane timed out: ${what} within ${Math.round(ms / 100) / 10} s.`);

/**
 * Buffers a JSON body of at most `max` bytes, leasing its bytes from the
 * shared budget first, and gives up (408) when it is not complete within
 * `timeoutMs`. On any failure the request is left paused, unread.
 */
function readBody(req: IncomingMessage, max: number, lease: BodyLease, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = contentLength(req);
    if (declared !== undefined && declared > max) return reject(tooLong(max));
    if (declared !== undefined && declared > 0 && !lease.take(declared)) return reject(busy(lease.limit));
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | undefined) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', finish);
      req.off('close', onClose);
      if (err) {
        req.pause();
        chunks.length = 0;
        reject(err);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) return finish(tooLong(max));
      if (declared === undefined && !lease.take(c.length)) return finish(busy(lease.limit));
      chunks.push(c);
    };
    const onEnd = () => finish(undefined);
    const onClose = () => {
      if (!req.complete) finish(cutShort());
    };
    const timer = setTimeout(() => finish(slowBody(timeoutMs, 'the request body did not arrive')), timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', finish);
    req.on('close', onClose);
  });
}
/**
 * Streams an upload to a file under `dir`, hashing it on the way; at most
 * `max` bytes, and no pause longer than `idleMs` between chunks. The request
 * is piped by hand (not handed to pipeline) so that a failure leaves it
 * paused and the connection able to carry the error reply.
 */
async function receiveToFile(req: IncomingMessage, dir: string, max: number, idleMs: number): Promise<{ file: string; bytes: number; sha256: string }> {
  const declared = contentLength(req);
  const tooBig = () => new ApiError(413, 'SMS.0503', `Log upload failed. Cause: the archive is larger than ${max} bytes.`);
  if (declared !== undefined && declared > max) throw tooBig();
  const file = join(dir, `upload-${randomBytes(8).toString('hex')}.part`);
  const hash = createHash('sha256');
  let bytes = 0;
  let idle: NodeJS.Timeout | undefined;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > max) {
        cb(tooBig());
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => counter.destroy(slowBody(idleMs, 'the upload paused for longer than allowed')), idleMs);
  };
  const onData = () => arm();
  const onAborted = () => {
    if (!req.complete) counter.destroy(new Error('the client closed the connection before sending the whole upload'));
  };
  arm();
  req.on('data', onData);
  req.on('close', onAborted);
  req.pipe(counter);
  try {
    await pipeline(counter, createWriteStream(file, { mode: 0o600 }));
  } catch (e) {
    req.unpipe(counter);
    req.pause();
    await unlink(file).catch(() => {});
    throw e;
  } finally {
    clearTimeout(idle);
    req.off('data', onData);
    req.off('close', onAborted);
  }
  return { file, bytes, sha256: hash.digest('hex') };
}

/**
 * Writes the reply. When the request's body has not fully arrived (refused
 * before reading it, too large, too slow) the connection is closed after the
 * reply instead of being drained for the next request: a refused sender
 * cannot keep the server reading.
 */
function send(req: IncomingMessage, res: ServerResponse, reply: Reply, requestId: string): void {
  if (res.headersSent || res.destroyed) return;
  if (!req.complete) closeAfterReply(req);
  const status = reply.status ?? 200;
  const text = reply.body === undefined ? '{}' : JSON.stringify(reply.body);
  res.writeHead(status, {
    'Content-Type': 'application/json;charset=utf8',
    'Content-Length': Buffer.byteLength(text),
    'X-Request-Id': requestId,
    ...(req.complete ? {} : { Connection: 'close' }),
    ...reply.headers,
  });
  res.end(text);
}

/** How long a refused connection stays half-open after its reply (see closeAfterReply). */
const LINGER_MS = 2000;

/**
 * For a reply to a request whose body has not fully arrived: stop reading
 * the body and close the connection after the reply, with a short linger.
 * Node closes a `Connection: close` response's socket through destroySoon()
 * as soon as the reply is flushed; a peer still sending its body would then
 * get a reset and could lose the reply unread. So the socket sends its FIN
 * and is destroyed LINGER_MS later, and meanwhile reads nothing: the request
 * is switched to paused mode (read(0) marks it consumed, so Node does not
 * drain it), the HTTP parser stops the socket once 16 KiB are queued, and
 * the sender blocks on a full window instead of streaming into a reset.
 */
function closeAfterReply(req: IncomingMessage): void {
  req.pause();
  req.read(0);
  const socket = req.socket as IncomingMessage['socket'] & { destroySoon?: () => void };
  socket.destroySoon = () => {
    if (socket.writable) socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
}

/** Validates a body with a zod schema; failures become 400 SMS.6011 naming the field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  if (body === undefined) throw badRequest('SMS.6012', `Empty request body: ${what} needs a JSON body.`);
  const r = schema.safeParse(body);
  if (!r.success) {
    const params = r.error.issues.slice(0, 20).map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
    throw badRequest('SMS.6011', `The JSON request body does not meet the specifications (${what}): ${params[0]}`, params);
  }
  return r.data;
}
