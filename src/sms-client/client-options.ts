// What the control-plane client needs to know, as one zod schema: the agent's
// config file embeds it (docs/control-plane-client.md lists the keys). Secrets
// (token, password, sk, security_token, proxy password) live only here and in
// the request headers they produce.

import { z } from 'zod';
import { DEFAULT_BACKOFF } from './backoff.js';

const url = (what: string) =>
  z.string().refine(
    (v) => {
      try {
        const u = new URL(v);
        return u.protocol === 'https:' || u.protocol === 'http:';
      } catch {
        return false;
      }
    },
    { message: `${what} must be an http:// or https:// URL` },
  );

/** A token given directly: used as X-Auth-Token until the server rejects it. */
export const tokenAuthSchema = z.object({
  type: z.literal('token'),
  token: z.string().min(1).max(16_384),
});

/** A token obtained (and renewed) from POST /v3/auth/tokens with a user's password. */
export const passwordAuthSchema = z.object({
  type: z.literal('password'),
  user: z.string().min(1).max(255),
  password: z.string().min(1).max(1024),
  domain: z.string().min(1).max(255),
  /** Scope the token to a project (name or id) instead of the domain. */
  project: z.object({ name: z.string().optional(), id: z.string().optional() }).optional(),
  /** Where POST /v3/auth/tokens lives (the IAM endpoint); default: the control-plane endpoint. */
  iam_endpoint: url('iam_endpoint').optional(),
});

/** AK/SK request signing (SDK-HMAC-SHA256). */
export const akskAuthSchema = z.object({
  type: z.literal('aksk'),
  ak: z.string().min(1).max(255),
  sk: z.string().min(1).max(1024),
  /** For a temporary access key. */
  security_token: z.string().min(1).max(16_384).optional(),
  project_id: z.string().min(1).max(255).optional(),
});

export const authSchema = z.discriminatedUnion('type', [tokenAuthSchema, passwordAuthSchema, akskAuthSchema]);
export type AuthOptions = z.infer<typeof authSchema>;

export const controlPlaneOptionsSchema = z.object({
  /** The SMS endpoint, e.g. https://sms.ap-southeast-1.myhuaweicloud.com or https://127.0.0.1:8443 (local). */
  endpoint: url('endpoint'),
  auth: authSchema,
  /** PEM bundle of CAs to trust instead of the system's (a file path is read by the caller). */
  ca: z.string().optional(),
  /** Pin the server certificate by its SHA-256 fingerprint (the local control plane prints it); direct connections only. */
  fingerprint: z.string().optional(),
  /** HTTP(S) proxy URL, e.g. http://user:pass@proxy:3128; HTTPS requests tunnel through CONNECT. */
  proxy: url('proxy').optional(),
  /** CA bundle for an https:// proxy itself. */
  proxy_ca: z.string().optional(),
  connect_timeout_ms: z.int().min(1).max(600_000).default(10_000),
  headers_timeout_ms: z.int().min(1).max(600_000).default(30_000),
  body_timeout_ms: z.int().min(1).max(600_000).default(30_000),
  keep_alive_timeout_ms: z.int().min(1).max(600_000).default(30_000),
  /** Connections per origin. */
  connections: z.int().min(1).max(64).default(4),
  retry: z
    .object({
      max_attempts: z.int().min(1).max(20).default(DEFAULT_BACKOFF.maxAttempts),
      max_elapsed_ms: z.int().min(0).max(3_600_000).default(DEFAULT_BACKOFF.maxElapsedMs),
      base_delay_ms: z.int().min(0).max(60_000).default(DEFAULT_BACKOFF.baseDelayMs),
      max_delay_ms: z.int().min(0).max(600_000).default(DEFAULT_BACKOFF.maxDelayMs),
    })
    .prefault({}),
  /** A Date header further than this from the local clock, on an auth failure, is reported as SMS.0205. */
  max_clock_skew_ms: z.int().min(1_000).default(15 * 60_000),
  /** Responses larger than this are refused (SMS.0426). */
  max_response_bytes: z.int().min(1024).default(16 * 1024 * 1024),
});

export type ControlPlaneOptionsInput = z.input<typeof controlPlaneOptionsSchema>;
export type ControlPlaneOptions = z.output<typeof controlPlaneOptionsSchema>;
