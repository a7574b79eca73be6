// A small certificate authority for ferry's own servers: the local control
// plane acts as the CA of its migration tasks (GET /v3/tasks/{id}/certkey
// hands out a certificate and key issued to the task's source, and this
// CA's certificate to trust). The CA key lives in the server's data
// directory (0600) and never leaves it; issued keys are generated per
// request and kept nowhere. Self-signed server identities and fingerprint
// pinning are tls-identity.ts's.

import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';

export interface IssuedCertificate {
  /** PEM certificate signed by the CA. */
  cert: string;
  /** PEM (PKCS#8) private key of that certificate. A secret: never log it. */
  key: string;
}

export interface CertificateAuthority {
  /** PEM certificate of the CA. */
  readonly cert: string;
  /** A fresh EC P-256 key and a certificate for `commonName` (client and server use), valid `days`. */
  issue(commonName: string, options?: { altNames?: string[]; days?: number }): Promise<IssuedCertificate>;
}

const EC = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' } as const;

/** Loads `ca-key.pem` / `ca-cert.pem` from `dir`, or creates them (EC P-256, 10 years). */
export async function loadOrCreateCa(dir: string, commonName: string): Promise<CertificateAuthority> {
  const keyPath = join(dir, 'ca-key.pem');
  const certPath = join(dir, 'ca-cert.pem');
  let key: string;
  let cert: string;
  try {
    [key, cert] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const { generate } = await import('selfsigned');
    const notBefore = new Date(Date.now() - 60_000);
    const pems = await generate([{ name: 'commonName', value: commonName }], {
      ...EC,
      notBeforeDate: notBefore,
      notAfterDate: new Date(notBefore.getTime() + 10 * 365 * 86_400_000),
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ],
    });
    key = pems.private;
    cert = pems.cert;
    await writeFileAtomic(keyPath, key, { mode: 0o600 });
    await writeFileAtomic(certPath, cert, { mode: 0o644 });
  }
  if (!new X509Certificate(cert).ca) throw new Error(`${certPath} is not a CA certificate`);
  return {
    cert,
    async issue(cn, options = {}) {
      const { generate } = await import('selfsigned');
      const notBefore = new Date(Date.now() - 60_000);
      const names = options.altNames ?? [];
      const pems = await generate([{ name: 'commonName', value: cn }], {
        ...EC,
        ca: { key, cert },
        notBeforeDate: notBefore,
        notAfterDate: new Date(notBefore.getTime() + (options.days ?? 365) * 86_400_000),
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', clientAuth: true, serverAuth: true },
          ...(names.length
            ? [{ name: 'subjectAltName' as const, altNames: names.map((n) => (/^[0-9.]+$|:/.test(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) }]
            : []),
        ],
      });
      return { cert: pems.cert, key: pems.private };
    },
  };
}
