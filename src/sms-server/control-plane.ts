// ferry's local control plane: an SMS v3-compatible service with its own
// store, so that discovery, agent and receiver can run against it on one
// machine (tests, demos, labs, air-gapped migrations). This file owns the
// process-level pieces: the data directory (lock, TLS identity, store,
// control-plane.json) and the HTTP(S) server. The SMS rules live in
// service.ts, the wire plumbing in http-server.ts, authentication in
// auth.ts. It must not import the agent, the client or the engines.

import { mkdir, readFile, rm, unlink } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { createServer as createHttpsServer } from 'node:https';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FerryError, UsageError } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../platform/atomic-file.js';
import type { Logger } from '../platform/log.js';
import { acquireProcessLock, isLockHeld } from '../platform/process-lock.js';
import { loadOrCreateCa } from '../platform/tls-ca.js';
import { loadOrCreateTlsIdentity } from '../platform/tls-identity.js';
import { Authenticator } from './auth.js';
import type { Credentials } from './credentials.js';
import { ApiError } from './api-error.js';
import { createHttpHandler, DEFAULT_BODY_LIMITS } from './http-server.js';
import { buildRoutes } from './routes.js';
import { ControlPlaneService } from './service.js';
import { Store } from './store.js';

export interface ControlPlaneOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  dataDir: string;
  /** Plain HTTP instead of HTTPS. */
  http?: boolean;
  credentials: Credentials;
  log: Logger;
  /** Called when the store can no longer write (disk full, I/O error): the process should exit and be restarted. */
  onFatal?: (err: Error) => void;
}

/** What DIR/control-plane.json says about a running control plane. */
export interface ControlPlaneInfo {
  pid: number;
  url: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  /** SHA-256 of the server certificate (hex), or null over plain HTTP. */
  fingerprint: string | null;
  started_at: string;
}

export interface RunningControlPlane {
  info: ControlPlaneInfo;
  close(): Promise<void>;
}

export const INFO_FILE = 'control-plane.json';

/**
 * Connection-level bounds (the per-body ones are in http-server.ts). A
 * request's headers must be complete HEADERS_TIMEOUT_MS after its first
 * byte (FERRY_CP_HEADERS_TIMEOUT_MS shortens it for tests), a TLS handshake
 * within HANDSHAKE_TIMEOUT_MS. REQUEST_TIMEOUT_MS is only a backstop for
 * authenticated uploads: JSON bodies have a deadline of seconds and uploads
 * an idle limit long before it.
 */
export const HEADERS_TIMEOUT_MS = 10_000;
export const HANDSHAKE_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 10 * 60_000;

function envMs(name: string): number | undefined {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen.trim());
  if (!m) throw new UsageError(`--listen must be HOST:PORT (for example 127.0.0.1:8443 or [::1]:0), not ${JSON.stringify(listen)}`);
  const port = Number(m[3]);
  if (port > 65_535) throw new UsageError(`--listen port ${port} is out of range`);
  return { host: m[1] ?? m[2]!, port };
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<RunningControlPlane> {
  if (opts.credentials.empty) throw new UsageError('the control plane needs credentials: --credentials FILE or --ak KEY --sk SECRET');
  const { host, port } = parseListen(opts.listen);
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const lockPath = join(opts.dataDir, 'control-plane.lock');
  const lock = await acquireProcessLock(lockPath);
  if (isLockHeld(lock)) {
    throw new FerryError('FERRY_LOCKED', `another control plane${lock.pid ? ` (pid ${lock.pid})` : ''} is using the data directory ${opts.dataDir}; stop it first`);
  }
  if (lock.kind === 'pidfile' && process.platform !== 'win32') {
    opts.log.warn({ lock: lockPath }, 'flock(1) (util-linux) was not found: falling back to a PID-file lock, which a crash can leave behind');
  }
  let store: Store | undefined;
  try {
    const compactBytes = Number(process.env.FERRY_CP_COMPACT_BYTES) || undefined;
    store = await Store.open(join(opts.dataDir, 'store'), {
      compactBytes,
      onFailure: (err) => {
        opts.log.fatal({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'the store cannot write; stopping');
        opts.onFatal?.(err);
      },
    });
    if (store.loadReport.staleTemporaries > 0) {
      opts.log.warn({ removed: store.loadReport.staleTemporaries }, 'removed temporary snapshot files left by a crash during compaction');
    }
    if (store.loadReport.droppedBytes > 0) {
      opts.log.warn({ droppedBytes: store.loadReport.droppedBytes }, 'dropped a torn record at the end of the journal (a write interrupted by a crash)');
    }
    const tmpDir = join(opts.dataDir, 'tmp');
    await rm(tmpDir, { recursive: true, force: true });
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });

    // The tasks' certificate authority (GET /v3/tasks/{id}/certkey), kept beside the TLS identity (also with --http).
    const ca = await loadOrCreateCa(join(opts.dataDir, 'tls'), 'ferry control-plane task CA');
    const service = new ControlPlaneService(store, { dataDir: opts.dataDir, ca });
    try {
      service.validateStore();
    } catch (e) {
      throw new FerryError('FERRY_STORE_CORRUPT', `the store in ${opts.dataDir} cannot be used: ${(e as Error).message}`);
    }
    const auth = new Authenticator(store, opts.credentials);
    const handler = createHttpHandler({
      routes: buildRoutes(service, auth),
      authenticator: auth,
      tmpDir,
      log: opts.log,
      limits: { bodyTimeoutMs: envMs('FERRY_CP_BODY_TIMEOUT_MS') ?? DEFAULT_BODY_LIMITS.bodyTimeoutMs },
    });

    const headersTimeout = envMs('FERRY_CP_HEADERS_TIMEOUT_MS') ?? HEADERS_TIMEOUT_MS;
    // Node checks headersTimeout/requestTimeout on this period (default 30 s).
    const serverOptions = { connectionsCheckingInterval: Math.min(1000, headersTimeout / 2) };
    let server: Server;
    let fingerprint: string | null = null;
    if (opts.http) {
      server = createHttpServer(serverOptions, handler);
    } else {
      const altNames = [...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...(host === '0.0.0.0' || host === '::' ? [] : [host])])];
      const id = await loadOrCreateTlsIdentity(join(opts.dataDir, 'tls'), { commonName: 'ferry-control-plane', altNames });
      fingerprint = id.fingerprint;
      server = createHttpsServer({ key: id.key, cert: id.cert, minVersion: 'TLSv1.2', handshakeTimeout: HANDSHAKE_TIMEOUT_MS, ...serverOptions }, handler);
    }
    server.headersTimeout = headersTimeout;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.keepAliveTimeout = 65_000;
    server.on('clientError', answerClientError);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    const boundPort = typeof addr === 'object' && addr ? addr.port : port;
    const scheme = opts.http ? 'http' : 'https';
    const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
    const info: ControlPlaneInfo = {
      pid: process.pid,
      url: `${scheme}://${urlHost}:${boundPort}`,
      scheme,
      host,
      port: boundPort,
      fingerprint,
      started_at: new Date().toISOString(),
    };
    await writeFileAtomic(join(opts.dataDir, INFO_FILE), JSON.stringify(info, null, 2) + '\n', { mode: 0o644 });

    const openStore = store;
    let closing: Promise<void> | undefined;
    return {
      info,
      close: () =>
        (closing ??= (async () => {
          await new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          });
          await openStore.checkpoint().catch(() => {});
          await openStore.close();
          await unlink(join(opts.dataDir, INFO_FILE)).catch(() => {});
          await lock.release();
        })()),
    };
  } catch (e) {
    await store?.close().catch(() => {});
    await lock.release();
    throw e;
  }
}

/**
 * A request Node's parser gave up on before it reached a handler: headers
 * too slow (headersTimeout), too large or malformed. Answered with the SMS
 * error body instead of Node's empty one, then the connection is closed. A
 * request already being handled (the requestTimeout backstop fired under an
 * upload) is cut without an answer: its handler owns the response.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight) {
    socket.destroy();
    return;
  }
  const e =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new ApiError(408, 'SMS.0203', 'Connection to the control plane timed out: the request headers did not arrive in time.')
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new ApiError(431, 'SMS.9001', 'Invalid parameters: the request headers are too large.')
        : new ApiError(400, 'SMS.9001', 'Invalid parameters: the request is not valid HTTP/1.1.');
  const text = JSON.stringify(e.body());
  const reason = e.status === 408 ? 'Request Timeout' : e.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${e.status} ${reason}\r\nContent-Type: application/json;charset=utf8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** Reads DIR/control-plane.json (written at startup). */
export async function readControlPlaneInfo(dataDir: string): Promise<ControlPlaneInfo> {
  try {
    return JSON.parse(await readFile(join(dataDir, INFO_FILE), 'utf8')) as ControlPlaneInfo;
  } catch (e) {
    throw new FerryError('FERRY_NO_CONTROL_PLANE', `no running control plane found in ${dataDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); start one with: ferry control-plane --data ${dataDir}`);
  }
}
