// ferry's local control plane: an SMS v3-compatible service with its own
// store, so that discovery, agent and receiver can run against it on one
// machine (tests, demos, labs, air-gapped migrations). This file owns the
// process-level pieces: the data directory (lock, TLS identity, store,
// control-plane.json) and the HTTP(S) server. The SMS rules live in
// service.ts, the wire plumbing in http-server.ts, authentication in
// auth.ts. It must not import the agent, the client or the engines.

import { mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FerryError, UsageError } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../platform/atomic-file.js';
import type { Logger } from '../platform/log.js';
import { pidAlive } from '../platform/pid-alive.js';
import { loadOrCreateTlsIdentity } from '../platform/tls-identity.js';
import { Authenticator } from './auth.js';
import type { Credentials } from './credentials.js';
import { createHttpHandler } from './http-server.js';
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
  const lock = join(opts.dataDir, 'control-plane.lock');
  await acquireLock(lock);
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
    if (store.loadReport.droppedBytes > 0) {
      opts.log.warn({ droppedBytes: store.loadReport.droppedBytes }, 'dropped a torn record at the end of the journal (a write interrupted by a crash)');
    }
    const tmpDir = join(opts.dataDir, 'tmp');
    await rm(tmpDir, { recursive: true, force: true });
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });

    const service = new ControlPlaneService(store, { dataDir: opts.dataDir });
    try {
      service.validateStore();
    } catch (e) {
      throw new FerryError('FERRY_STORE_CORRUPT', `the store in ${opts.dataDir} cannot be used: ${(e as Error).message}`);
    }
    const auth = new Authenticator(store, opts.credentials);
    const handler = createHttpHandler({ routes: buildRoutes(service, auth), authenticator: auth, tmpDir, log: opts.log });

    let server: Server;
    let fingerprint: string | null = null;
    if (opts.http) {
      server = createHttpServer(handler);
    } else {
      const altNames = [...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...(host === '0.0.0.0' || host === '::' ? [] : [host])])];
      const id = await loadOrCreateTlsIdentity(join(opts.dataDir, 'tls'), { commonName: 'ferry-control-plane', altNames });
      fingerprint = id.fingerprint;
      server = createHttpsServer({ key: id.key, cert: id.cert, minVersion: 'TLSv1.2' }, handler);
    }
    server.headersTimeout = 30_000;
    server.requestTimeout = 15 * 60_000;
    server.keepAliveTimeout = 65_000;
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
          await unlink(lock).catch(() => {});
        })()),
    };
  } catch (e) {
    await store?.close().catch(() => {});
    await unlink(lock).catch(() => {});
    throw e;
  }
}

/** One control plane per data directory; a lock left by a dead process is taken over. */
async function acquireLock(path: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (pid > 0 && pid !== process.pid && pidAlive(pid)) {
      throw new FerryError('FERRY_LOCKED', `another control plane (pid ${pid}) is using this data directory; stop it first`);
    }
    await unlink(path).catch(() => {});
  }
  throw new FerryError('FERRY_LOCKED', `cannot take the lock ${path}`);
}

/** Reads DIR/control-plane.json (written at startup). */
export async function readControlPlaneInfo(dataDir: string): Promise<ControlPlaneInfo> {
  try {
    return JSON.parse(await readFile(join(dataDir, INFO_FILE), 'utf8')) as ControlPlaneInfo;
  } catch (e) {
    throw new FerryError('FERRY_NO_CONTROL_PLANE', `no running control plane found in ${dataDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); start one with: ferry control-plane --data ${dataDir}`);
  }
}
