// Authentication for the local control plane, the two ways section 3.2 of
// the SMS reference documents: an IAM-style token (POST /v3/auth/tokens
// with user/password, X-Subject-Token in the answer, valid 24 h, sent back
// as X-Auth-Token) and AK/SK request signing (SDK-HMAC-SHA256, X-Sdk-Date at
// most 15 minutes off). Tokens are kept in the store as SHA-256 digests
// only, so they survive restarts without the data directory holding them.

import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ApiError, badRequest, unauthorized } from './api-error.js';
import type { Credentials } from './credentials.js';
import { checkSignedHeaders, verifyRequest, type IncomingSignedRequest, type VerifyFailure } from '../sms/aksk-signer.js';
import type { Store } from './store.js';

export const TOKEN_LIFETIME_MS = 24 * 3600_000;
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;

export interface Principal {
  kind: 'token' | 'aksk';
  /** User or access-key name: safe to log. */
  name: string;
}

const tokenRecordSchema = z.object({ user: z.string(), domain: z.string(), issued_at: z.number(), expires_at: z.number() });
type TokenRecord = z.infer<typeof tokenRecordSchema>;

/** The IAM token request; `scope` is accepted inside `auth` (IAM) or beside it (as the SMS document prints it). */
const tokenRequestSchema = z.looseObject({
  auth: z.looseObject({
    identity: z.looseObject({
      methods: z.array(z.string()).refine((m) => m.includes('password'), 'identity.methods must include "password"'),
      password: z.looseObject({
        user: z.looseObject({
          name: z.string().min(1).max(255),
          password: z.string().min(1).max(1024),
          domain: z.looseObject({ name: z.string().max(255).optional(), id: z.string().max(255).optional() }).optional(),
        }),
      }),
    }),
  }),
});

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class Authenticator {
  constructor(
    private readonly store: Store,
    private readonly credentials: Credentials,
    private readonly now: () => number = Date.now,
  ) {}

  /** POST /v3/auth/tokens: checks the password, stores the token's digest, returns the token and the body. */
  async issueToken(body: unknown): Promise<{ token: string; body: unknown }> {
    const parsed = tokenRequestSchema.safeParse(body);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw badRequest('SMS.6011', `token request: ${i.path.join('.') || '(body)'}: ${i.message}`);
    }
    const user = parsed.data.auth.identity.password.user;
    const domain = user.domain?.name ?? user.domain?.id;
    if (!this.credentials.checkPassword(user.name, user.password, domain)) {
      throw unauthorized('SMS.6521', 'Token-based authentication failed: wrong user name, password or domain.');
    }
    const token = randomBytes(48).toString('base64url');
    const issued = this.now();
    const rec: TokenRecord = { user: user.name, domain: domain ?? user.name, issued_at: issued, expires_at: issued + TOKEN_LIFETIME_MS };
    const expired = this.store.entries<TokenRecord>('tokens').filter(([, t]) => t.expires_at <= issued);
    await this.store.transact(() => ({
      ops: [
        ...expired.map(([id]) => ({ op: 'del' as const, coll: 'tokens' as const, id })),
        { op: 'put' as const, coll: 'tokens' as const, id: digest(token), value: rec },
      ],
      result: undefined,
    }));
    return {
      token,
      body: {
        token: {
          methods: ['password'],
          issued_at: new Date(issued).toISOString(),
          expires_at: new Date(rec.expires_at).toISOString(),
          user: { name: user.name, domain: { name: rec.domain } },
        },
      },
    };
  }

  /**
   * Authenticates one request. `body` is the body as received (JSON routes)
   * and `payloadSha256` its hash. Upload routes authenticate before the body
   * arrives (`payloadSha256` undefined) and must declare X-Sdk-Content-Sha256,
   * which the caller compares with the body afterwards. Throws a 401
   * ApiError with the documented code.
   */
  authenticate(req: IncomingSignedRequest, payloadSha256: string | undefined, options: { upload?: boolean } = {}): Principal {
    const token = header(req.headers, 'x-auth-token');
    const authorization = header(req.headers, 'authorization');
    if (token !== undefined) {
      const rec = this.store.get<TokenRecord>('tokens', digest(token));
      if (!rec) throw unauthorized('SMS.6521', 'Token-based authentication failed: the token is not known to this control plane.');
      if (rec.expires_at <= this.now()) throw unauthorized('SMS.6521', 'Token-based authentication failed: the token has expired; request a new one.');
      return { kind: 'token', name: rec.user };
    }
    if (authorization !== undefined) {
      const declared = header(req.headers, 'x-sdk-content-sha256');
      if (options.upload && declared === undefined) {
        throw unauthorized('SMS.0202', 'AK/SK authentication failed: an upload must declare X-Sdk-Content-Sha256 (the hex SHA-256 of the body, or UNSIGNED-PAYLOAD).');
      }
      if (payloadSha256 !== undefined && declared !== undefined && declared !== 'UNSIGNED-PAYLOAD' && declared.toLowerCase() !== payloadSha256) {
        throw unauthorized('SMS.0202', 'AK/SK authentication failed: X-Sdk-Content-Sha256 does not match the body.');
      }
      const r = verifyRequest(req, (ak) => this.credentials.secretFor(ak)?.sk, this.verifyOptions(options));
      if (!r.ok) throw akskFailure(r);
      return { kind: 'aksk', name: this.credentials.secretFor(r.access)?.name ?? r.access };
    }
    throw unauthorized('SMS.6522', 'The X-Auth-Token header field is missing (and no AK/SK Authorization header was given).');
  }

  /**
   * What can be decided before a byte of the body is read: a token request
   * completely; an AK/SK request completely when it declares
   * X-Sdk-Content-Sha256 (the signature covers the declared hash; the caller
   * compares it with the body later), otherwise everything but the signature
   * (format, date skew, a known AK). Returns the principal when the request
   * is authenticated already, undefined when the signature needs the body.
   * Throws the same 401 errors as authenticate(), so a request whose headers
   * do not authenticate is refused with its body never buffered.
   */
  authenticateHeaders(req: Omit<IncomingSignedRequest, 'body'>, options: { upload?: boolean } = {}): Principal | undefined {
    if (header(req.headers, 'x-auth-token') !== undefined || header(req.headers, 'authorization') === undefined) {
      return this.authenticate(req, undefined, options);
    }
    if (options.upload || header(req.headers, 'x-sdk-content-sha256') !== undefined) return this.authenticate(req, undefined, options);
    const r = checkSignedHeaders(req, (ak) => this.credentials.secretFor(ak)?.sk, this.verifyOptions(options));
    if (!r.ok) throw akskFailure(r);
    return undefined;
  }

  private verifyOptions(options: { upload?: boolean }) {
    return { now: new Date(this.now()), maxSkewMs: MAX_CLOCK_SKEW_MS, allowUnsignedPayload: options.upload };
  }
}

function akskFailure(r: { reason: VerifyFailure; detail: string }): ApiError {
  if (r.reason === 'stale_date') {
    return unauthorized('SMS.0205', `AK/SK authentication failed. The time or time zone of the source server is incorrect: ${r.detail} (at most 15 minutes allowed).`);
  }
  return unauthorized('SMS.0202', `AK/SK authentication failed. Ensure that the AK and SK are correct (${r.detail}).`);
}

function header(headers: IncomingSignedRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : v;
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}
