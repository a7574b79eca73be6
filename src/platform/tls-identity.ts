// TLS identities for ferry's own servers (the receiver, the local control
// plane): a self-signed certificate generated on first start and kept in the
// server's data directory (key 0600), and the SHA-256 fingerprint that
// clients pin. Also the client half: pinning a peer's certificate by
// fingerprint, since a self-signed certificate cannot be verified by a CA.

import { X509Certificate, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { FerryError } from '../errors/ferry-error.js';
import { writeFileAtomic } from './atomic-file.js';

export interface TlsIdentity {
  key: string;
  cert: string;
  /** SHA-256 of the DER certificate, lowercase hex without separators. */
  fingerprint: string;
}

/** Lowercase hex without colons or spaces; accepts `AB:CD:…` and `sha256:abcd…`. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.trim().replace(/^sha256:/i, '').replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new FerryError('SMS.0304', 'certificate fingerprint must be a SHA-256 digest: 64 hex digits, with or without colons');
  }
  return hex;
}

export function certFingerprint(certPem: string): string {
  return normalizeFingerprint(new X509Certificate(certPem).fingerprint256);
}

/**
 * Loads `tls-key.pem` and `tls-cert.pem` from `dir`, or creates them
 * (EC P-256, 10 years, subjectAltName for the given names and addresses).
 */
export async function loadOrCreateTlsIdentity(
  dir: string,
  options: { commonName: string; altNames?: string[] },
): Promise<TlsIdentity & { created: boolean }> {
  const keyPath = join(dir, 'tls-key.pem');
  const certPath = join(dir, 'tls-cert.pem');
  try {
    const [key, cert] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
    return { key, cert, fingerprint: certFingerprint(cert), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { generate } = await import('selfsigned');
  const names = options.altNames ?? ['localhost', '127.0.0.1', '::1'];
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + 10 * 365 * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: options.commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: names.map((n) => (/^[0-9.]+$|:/.test(n) ? { type: 7, ip: n } : { type: 2, value: n })),
      },
    ],
  });
  await writeFileAtomic(keyPath, pems.private, { mode: 0o600 });
  await writeFileAtomic(certPath, pems.cert, { mode: 0o644 });
  return { key: pems.private, cert: pems.cert, fingerprint: certFingerprint(pems.cert), created: true };
}

/**
 * Checks, right after the TLS handshake and before anything is sent, that
 * the peer presented the pinned certificate. Throws SMS.0304 otherwise.
 * Use with `rejectUnauthorized: false` (the pin replaces CA validation).
 */
export function assertPinnedPeer(socket: TLSSocket, expected: string): void {
  const want = Buffer.from(normalizeFingerprint(expected), 'hex');
  const peer = socket.getPeerCertificate();
  const got = peer && peer.fingerprint256 ? Buffer.from(normalizeFingerprint(peer.fingerprint256), 'hex') : Buffer.alloc(0);
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new FerryError(
      'SMS.0304',
      `TLS authentication failed: the server presented certificate ${got.length ? got.toString('hex') : '(none)'}, not the pinned ${want.toString('hex')}`,
    );
  }
}
