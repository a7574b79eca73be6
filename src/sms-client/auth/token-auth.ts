// Token authentication (SMS v3 reference section 3.2): X-Auth-Token on every
// request. Either a token given directly (used until the server rejects it),
// or one obtained from POST /v3/auth/tokens with a user's password: cached,
// shared by concurrent calls, renewed at 90 % of its lifetime (tokens live 24
// hours, so about 2.4 hours before expiry) and once more when a call gets 401.

import type { Authenticator, OutgoingRequest, Transport } from '../transport.js';
import { passwordTokenRequest, tokenResponseSchema } from '../../sms/schemas/auth-token.js';
import { SmsApiError } from '../sms-api-error.js';

export const TOKEN_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** Renew when this fraction of the token's lifetime has passed. */
export const TOKEN_RENEW_FRACTION = 0.9;

export class StaticTokenAuth implements Authenticator {
  constructor(private readonly token: string) {}

  async authorize(req: OutgoingRequest): Promise<Record<string, string>> {
    return { ...req.headers, 'X-Auth-Token': this.token };
  }

  async renew(): Promise<boolean> {
    return false;
  }

  secrets(): string[] {
    return [this.token];
  }
}

export interface PasswordTokenOptions {
  user: string;
  password: string;
  domain: string;
  project?: { name?: string; id?: string };
  /** Origin of POST /v3/auth/tokens; default the control-plane endpoint. */
  iamEndpoint?: string;
}

interface CachedToken {
  value: string;
  /** Local time (ms) after which the token is renewed before use. */
  renewAt: number;
  /** Local time (ms) the token expires, as far as we can tell. */
  expiresAt: number;
}

export class PasswordTokenAuth implements Authenticator {
  private cached?: CachedToken;
  private inflight?: Promise<CachedToken>;
  /** How many tokens were obtained (for tests and diagnostics). */
  fetches = 0;

  constructor(
    private readonly transport: Transport,
    private readonly options: PasswordTokenOptions,
    private readonly now: () => number = Date.now,
  ) {}

  async authorize(req: OutgoingRequest, signal?: AbortSignal): Promise<Record<string, string>> {
    const token = await this.current(signal);
    return { ...req.headers, 'X-Auth-Token': token.value };
  }

  async renew(): Promise<boolean> {
    this.cached = undefined;
    return true;
  }

  secrets(): string[] {
    return [this.options.password, ...(this.cached ? [this.cached.value] : [])];
  }

  /** When the cached token will be renewed (local ms), if there is one. */
  get renewAt(): number | undefined {
    return this.cached?.renewAt;
  }

  private async current(signal?: AbortSignal): Promise<CachedToken> {
    if (this.cached && this.now() < this.cached.renewAt) return this.cached;
    if (!this.inflight) {
      this.inflight = this.fetch(signal).finally(() => {
        this.inflight = undefined;
      });
    }
    this.cached = await this.inflight;
    return this.cached;
  }

  private async fetch(signal?: AbortSignal): Promise<CachedToken> {
    const sentAt = this.now();
    const res = await this.transport.call({
      method: 'POST',
      path: '/v3/auth/tokens',
      baseUrl: this.options.iamEndpoint,
      body: passwordTokenRequest(this.options),
      expect: 'json',
      response: tokenResponseSchema,
      auth: false,
      signal,
    });
    const header = res.headers['x-subject-token'];
    const value = Array.isArray(header) ? header[0] : header;
    if (!value) {
      throw new SmsApiError('FERRY_BAD_RESPONSE', 'POST /v3/auth/tokens: the response carries no X-Subject-Token header', {
        status: res.status,
        method: 'POST',
        path: '/v3/auth/tokens',
      });
    }
    this.fetches++;
    // Lifetime as the server sees it (expires_at minus its Date), applied to our clock.
    const serverNow = dateHeader(res.headers.date) ?? sentAt;
    const expires = res.data.token.expires_at ? Date.parse(res.data.token.expires_at) : NaN;
    const lifetime = Number.isNaN(expires) ? TOKEN_LIFETIME_MS : Math.max(0, Math.min(expires - serverNow, TOKEN_LIFETIME_MS * 7));
    return { value, renewAt: sentAt + lifetime * TOKEN_RENEW_FRACTION, expiresAt: sentAt + lifetime };
  }
}

function dateHeader(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}
