// AK/SK authentication: every attempt is signed afresh (new X-Sdk-Date), with
// X-Security-Token and X-Project-Id when configured. There is nothing to renew
// on a 401: a wrong key or a wrong clock needs a person (SMS.0202 / SMS.0205).

import type { Authenticator, OutgoingRequest } from '../transport.js';
import { signRequest, type AkSkCredentials } from '../../sms/aksk-signer.js';

export class AkSkAuth implements Authenticator {
  readonly unauthorizedCode = 'SMS.0202' as const;

  constructor(
    private readonly creds: AkSkCredentials,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async authorize(req: OutgoingRequest): Promise<Record<string, string>> {
    return signRequest({ method: req.method, url: req.url, headers: req.headers, body: req.body }, this.creds, this.now());
  }

  async renew(): Promise<boolean> {
    return false;
  }

  /** What the transport scrubs from errors: the SK and security token, and the AK too (a server may echo it). */
  secrets(): string[] {
    return [this.creds.sk, this.creds.ak, ...(this.creds.securityToken ? [this.creds.securityToken] : [])];
  }
}
