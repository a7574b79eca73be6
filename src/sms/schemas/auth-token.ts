// The IAM-style token request, POST /v3/auth/tokens (section 3.2): password
// authentication of a user in a domain, scoped to a domain or a project. The
// token itself comes back in the X-Subject-Token response header; the body
// says when it expires. Tokens are valid 24 hours.
//
// Section 3.2's example puts `scope` beside `auth` rather than inside it (as
// IAM does); both places are accepted, ferry sends it inside `auth`.

import { z } from 'zod';
import { str } from './common.js';

const named = z.object({ name: str().optional(), id: str().optional() }).refine((v) => v.name !== undefined || v.id !== undefined, {
  message: 'needs a name or an id',
});

export const authScopeSchema = z.object({
  domain: named.optional(),
  project: named.optional(),
});

export const tokenRequestSchema = z.object({
  auth: z.object({
    identity: z.object({
      methods: z.array(z.literal('password')).min(1),
      password: z.object({
        user: z.object({
          name: str(),
          password: z.string().min(1).max(1024),
          domain: named,
        }),
      }),
    }),
    scope: authScopeSchema.optional(),
  }),
  scope: authScopeSchema.optional(),
});
export type TokenRequest = z.infer<typeof tokenRequestSchema>;

/** The response body; only `token.expires_at` matters to a client. */
export const tokenResponseSchema = z.looseObject({
  token: z.looseObject({
    expires_at: z.iso.datetime({ offset: true, local: true }).nullish(),
    issued_at: z.string().nullish(),
    methods: z.array(z.string()).nullish(),
    user: z.looseObject({ name: z.string().nullish(), id: z.string().nullish() }).nullish(),
  }),
});
export type TokenResponse = z.infer<typeof tokenResponseSchema>;

/** Builds the password-token request body. */
export function passwordTokenRequest(opts: {
  user: string;
  password: string;
  domain: string;
  project?: { name?: string; id?: string };
}): TokenRequest {
  return {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: opts.user, password: opts.password, domain: { name: opts.domain } } },
      },
      scope: opts.project ? { project: opts.project } : { domain: { name: opts.domain } },
    },
  };
}
