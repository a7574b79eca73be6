// The client's one undici dispatcher: a keep-alive Agent (or a ProxyAgent
// tunnelling through an HTTP(S) proxy) with connect, headers and body
// timeouts, a custom CA bundle, or a pinned server certificate fingerprint.
// Also the mapping of transport failures onto SMS codes.

import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector, ProxyAgent, type Dispatcher } from 'undici';
import { FerryError, UsageError, type Recovery } from '../errors/ferry-error.js';
import { assertPinnedPeer, normalizeFingerprint } from '../platform/tls-identity.js';
import type { ControlPlaneOptions } from './client-options.js';

export function createDispatcher(options: ControlPlaneOptions): Dispatcher {
  const common = {
    headersTimeout: options.headers_timeout_ms,
    bodyTimeout: options.body_timeout_ms,
    keepAliveTimeout: options.keep_alive_timeout_ms,
    keepAliveMaxTimeout: Math.max(options.keep_alive_timeout_ms, 60_000),
    connections: options.connections,
  };
  const tls = { ca: options.ca, timeout: options.connect_timeout_ms };

  if (options.proxy) {
    if (options.fingerprint) {
      throw new UsageError('fingerprint pinning works on direct connections only; with a proxy, give the server certificate as the CA bundle (ca)');
    }
    return new ProxyAgent({
      uri: options.proxy,
      ...common,
      requestTls: tls,
      proxyTls: { ca: options.proxy_ca, timeout: options.connect_timeout_ms },
    });
  }

  if (options.fingerprint) {
    const pin = normalizeFingerprint(options.fingerprint);
    // No TLS session resumption: a resumed session shows no peer certificate to check.
    const base = buildConnector({ rejectUnauthorized: false, timeout: options.connect_timeout_ms, maxCachedSessions: 0 });
    const connect: buildConnector.connector = (opts, callback) =>
      base(opts, (err, socket) => {
        if (err || !socket) {
          callback(err ?? new Error('no socket'), null);
          return;
        }
        if (opts.protocol === 'https:') {
          try {
            assertPinnedPeer(socket as TLSSocket, pin);
          } catch (e) {
            socket.destroy();
            callback(e as Error, null);
            return;
          }
        }
        callback(null, socket);
      });
    return new Agent({ ...common, connect });
  }

  return new Agent({ ...common, connect: tls });
}

export interface TransportFailure {
  code: 'SMS.0301' | 'SMS.0302' | 'SMS.0203' | 'SMS.0304';
  recovery: Recovery;
  cause: string;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_RETRY',
]);

function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    const errors = (e as { errors?: unknown }).errors; // AggregateError (happy eyeballs)
    if (Array.isArray(errors)) codes.push(...errors.flatMap(errorCodes));
    e = (e as { cause?: unknown }).cause;
  }
  return codes;
}

function isTlsCode(code: string): boolean {
  return (
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('CERT_') ||
    code.startsWith('UNABLE_TO_') ||
    code.includes('_CERT') ||
    code === 'EPROTO' ||
    code === 'SMS.0304'
  );
}

/** Maps an error thrown by undici (or a connector) onto an SMS code. */
export function classifyTransportError(err: unknown): TransportFailure {
  const codes = errorCodes(err);
  const cause = describeCause(err, codes);
  if (err instanceof FerryError && err.code === 'SMS.0304') return { code: 'SMS.0304', recovery: 'fatal', cause };
  if (codes.some(isTlsCode)) return { code: 'SMS.0304', recovery: 'fatal', cause };
  if (codes.includes('ENOTFOUND')) return { code: 'SMS.0302', recovery: 'fatal', cause };
  if (codes.includes('EAI_AGAIN')) return { code: 'SMS.0302', recovery: 'retryable', cause };
  if (codes.some((c) => TIMEOUT_CODES.has(c))) return { code: 'SMS.0203', recovery: 'retryable', cause };
  if (codes.some((c) => TRANSIENT_CODES.has(c))) return { code: 'SMS.0301', recovery: 'retryable', cause };
  return { code: 'SMS.0301', recovery: 'fatal', cause };
}

function describeCause(err: unknown, codes: string[]): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = codes[0];
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
