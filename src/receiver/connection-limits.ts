// Bounds on what the receiver holds for peers that have not authenticated
// yet: how many such connections at once (in total and per source address)
// and how long one may take to authenticate. This file owns the counting and
// the refusal (with a log line); the server (server.ts) owns the handshake
// and says when a connection has authenticated, after which it no longer
// counts: authenticated sessions are bounded by the targets (one session per
// target, a new one takes over), so a full cap never stops them.

import type { Socket } from 'node:net';
import type { Logger } from '../platform/log.js';

export interface ConnectionLimitOptions {
  /** Connections not yet authenticated, at once, from all addresses (`--max-connections`). */
  maxPending: number;
  /** Connections not yet authenticated, at once, from one source address (`--max-connections-per-address`). */
  maxPendingPerAddress: number;
  /** Time for the TLS handshake, and again for HELLO after it (`--handshake-timeout`). */
  handshakeTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimitOptions = {
  maxPending: 64,
  maxPendingPerAddress: 8,
  handshakeTimeoutMs: 10_000,
};

/** At most one refusal line per cause this often; the lines in between are counted. */
const REFUSAL_LOG_EVERY_MS = 5_000;

/**
 * A live TCP connection is named by its four addresses: the raw socket the
 * listener accepts and the TLS socket wrapped around it report the same ones.
 */
function connectionKey(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}

export class ConnectionLimits {
  readonly options: ConnectionLimitOptions;
  private readonly log: Logger;
  private pending = 0;
  private readonly pendingByAddress = new Map<string, number>();
  /** Releases the pending slot of a connection (idempotent), by connection key. */
  private readonly releases = new Map<string, () => void>();
  private readonly refusals = new Map<string, { lastLogAt: number; unlogged: number }>();

  constructor(options: Partial<ConnectionLimitOptions>, log: Logger) {
    this.options = { ...DEFAULT_CONNECTION_LIMITS, ...options };
    for (const [k, v] of Object.entries(this.options)) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`connection limit ${k} must be a positive integer, got ${v}`);
    }
    this.log = log;
  }

  /** Unauthenticated connections held now (for tests and logs). */
  get pendingCount(): number {
    return this.pending;
  }

  /**
   * Called for every accepted TCP connection, before TLS: counts it, or
   * destroys it at once (with a log line) when a cap is reached.
   */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress ?? 'unknown';
    const fromAddress = this.pendingByAddress.get(address) ?? 0;
    const { maxPending, maxPendingPerAddress } = this.options;
    if (this.pending >= maxPending) {
      this.refuse(socket, 'total', `${this.pending} connections are waiting to authenticate, the cap (--max-connections ${maxPending}) is reached`);
      return false;
    }
    if (fromAddress >= maxPendingPerAddress) {
      this.refuse(socket, address, `${fromAddress} connections from ${address} are waiting to authenticate, the cap per address (--max-connections-per-address ${maxPendingPerAddress}) is reached`);
      return false;
    }
    this.pending++;
    this.pendingByAddress.set(address, fromAddress + 1);
    const key = connectionKey(socket);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.releases.delete(key);
      this.pending--;
      const n = (this.pendingByAddress.get(address) ?? 1) - 1;
      if (n > 0) this.pendingByAddress.set(address, n);
      else this.pendingByAddress.delete(address);
    };
    this.releases.set(key, release);
    socket.once('close', release);
    return true;
  }

  /** The connection under this TLS socket authenticated: it no longer counts against the caps. */
  authenticated(socket: Socket): void {
    this.releases.get(connectionKey(socket))?.();
  }

  private refuse(socket: Socket, cause: string, why: string): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.destroy();
    const now = Date.now();
    const r = this.refusals.get(cause) ?? { lastLogAt: 0, unlogged: 0 };
    this.refusals.set(cause, r);
    if (now - r.lastLogAt < REFUSAL_LOG_EVERY_MS) {
      r.unlogged++;
      return;
    }
    const more = r.unlogged > 0 ? ` (${r.unlogged} more refused since the last such line)` : '';
    this.log.warn({ peer, pending: this.pending }, `connection refused: ${why}${more}`);
    r.lastLogAt = now;
    r.unlogged = 0;
    if (this.refusals.size > 1024) this.refusals.clear(); // many addresses: forget old rate-limit state, never grow without bound
  }
}
