// The HTTP plumbing of the local control plane: route table, body reading
// with a size cap (streamed to a file for uploads), authentication before
// any handler runs, JSON parsing, and turning every failure into the SMS
// error body. Handlers only see a parsed RequestContext.

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

export interface HttpHandlerOptions {
  routes: Route[];
  authenticator: Authenticator;
  tmpDir: string;
  log: Logger;
}

export function createHttpHandler(options: HttpHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const compiled: CompiledRoute[] = options.routes.map((r) => ({ ...r, segments: r.pattern.split('/').filter(Boolean) }));
  return (req, res) => {
    const requestId = randomBytes(16).toString('hex');
    const started = Date.now();
    handle(req, requestId, compiled, options).then(
      (reply) => send(res, reply, requestId),
      (err: unknown) => {
        if (!(err instanceof ApiError)) {
          options.log.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err), requestId }, 'request failed');
        }
        const e = err instanceof ApiError ? err : new ApiError(500, 'SMS.6000', 'Service error: the control plane failed to process the request; see its log.');
        send(res, { status: e.status, body: e.body() }, requestId);
      },
    ).finally(() => {
      options.log.debug({ method: req.method, path: (req.url ?? '').split('?')[0], status: res.statusCode, ms: Date.now() - started, requestId }, 'request');
    });
  };
}

async function handle(req: IncomingMessage, requestId: string, routes: CompiledRoute[], options: HttpHandlerOptions): Promise<Reply> {
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
  if (!route) {
    req.resume();
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
    if (route.upload) {
      // Authenticate from the headers before taking the body: an upload's
      // AK/SK signature covers its declared X-Sdk-Content-Sha256, checked
      // against what actually arrives below. Strangers never reach the disk.
      if (route.auth !== false) {
        try {
          ctx.principal = options.authenticator.authenticate(signed, undefined, { upload: true });
        } catch (e) {
          req.resume();
          throw e;
        }
      }
      upload = await receiveToFile(req, options.tmpDir, route.upload.maxBytes);
      ctx.upload = upload;
      const declared = req.headers['x-sdk-content-sha256'];
      if (ctx.principal?.kind === 'aksk' && typeof declared === 'string' && declared !== 'UNSIGNED-PAYLOAD' && declared.toLowerCase() !== upload.sha256) {
        throw new ApiError(401, 'SMS.0202', 'AK/SK authentication failed: X-Sdk-Content-Sha256 does not match the body.');
      }
    } else {
      bodyBuf = await readBody(req, MAX_JSON_BODY);
      if (route.auth !== false) {
        ctx.principal = options.authenticator.authenticate({ ...signed, body: bodyBuf }, createHash('sha256').update(bodyBuf).digest('hex'));
      }
    }
    if (bodyBuf && bodyBuf.length > 0) {
      const ct = String(req.headers['content-type'] ?? '');
      if (!/^application\/json\b/i.test(ct)) throw badRequest('SMS.6016', 'The header type must be application/json.');
      try {
        ctx.body = JSON.parse(bodyBuf.toString('utf8'));
      } catch (e) {
        throw badRequest('SMS.6010', `The request body is not in the JSON format: ${(e as Error).message}`);
      }
    }
    return await route.handler(ctx);
  } finally {
    if (upload) await unlink(upload.file).catch(() => {});
  }
}

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

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      req.resume();
      reject(new ApiError(413, 'SMS.6014', `The request body is too long: at most ${max} bytes.`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(new ApiError(413, 'SMS.6014', `The request body is too long: at most ${max} bytes.`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function receiveToFile(req: IncomingMessage, dir: string, max: number): Promise<{ file: string; bytes: number; sha256: string }> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) {
    req.resume();
    throw new ApiError(413, 'SMS.0503', `Log upload failed. Cause: the archive is larger than ${max} bytes.`);
  }
  const file = join(dir, `upload-${randomBytes(8).toString('hex')}.part`);
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > max) {
        cb(new ApiError(413, 'SMS.0503', `Log upload failed. Cause: the archive is larger than ${max} bytes.`));
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(req, counter, createWriteStream(file, { mode: 0o600 }));
  } catch (e) {
    await unlink(file).catch(() => {});
    req.resume();
    throw e;
  }
  return { file, bytes, sha256: hash.digest('hex') };
}

function send(res: ServerResponse, reply: Reply, requestId: string): void {
  if (res.headersSent) return;
  const status = reply.status ?? 200;
  const text = reply.body === undefined ? '{}' : JSON.stringify(reply.body);
  res.writeHead(status, {
    'Content-Type': 'application/json;charset=utf8',
    'Content-Length': Buffer.byteLength(text),
    'X-Request-Id': requestId,
    ...reply.headers,
  });
  res.end(text);
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
