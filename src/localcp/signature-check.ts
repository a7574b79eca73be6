// The server half of SDK-HMAC-SHA256 request signing: rebuild the canonical
// request from what arrived and compute the signature the sender's SK must
// have produced. Follows the algorithm of the official Huawei Cloud SDK
// signer (the tests use that signer as the oracle).

import { createHash, createHmac } from 'node:crypto';

export interface SignableRequest {
  method: string;
  /** Path as received, percent-encoded, without the query. */
  path: string;
  /** Raw query string without '?', or ''. */
  query: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface ParsedAuthorization {
  access: string;
  signedHeaders: string[];
  signature: string;
}

const AUTH_RE = /^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-fA-F]+)\s*$/;

export function parseAuthorization(value: string): ParsedAuthorization | undefined {
  const m = AUTH_RE.exec(value.trim());
  if (!m) return undefined;
  return { access: m[1]!, signedHeaders: m[2]!.toLowerCase().split(';'), signature: m[3]!.toLowerCase() };
}

/** `20240416T095341Z` → epoch ms, or undefined when malformed. */
export function parseSdkDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isNaN(t) ? undefined : t;
}

const UNRESERVED = /[A-Za-z0-9\-_.~]/;

/** Percent-encodes everything but RFC 3986 unreserved characters, as the SDK signer does. */
export function sdkUrlEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    if (UNRESERVED.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function canonicalUri(path: string): string {
  const p = path
    .split('/')
    .map((seg) => sdkUrlEncode(safeDecode(seg)))
    .join('/');
  return p.endsWith('/') ? p : p + '/';
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function canonicalQuery(query: string): string {
  const params = new URLSearchParams(query);
  const byKey = new Map<string, string[]>();
  for (const [k, v] of params) byKey.set(k, [...(byKey.get(k) ?? []), v]);
  const out: string[] = [];
  for (const k of [...byKey.keys()].sort()) {
    for (const v of byKey.get(k)!.sort()) out.push(`${sdkUrlEncode(k)}=${sdkUrlEncode(v)}`);
  }
  return out.join('&');
}

export function expectedSignature(req: SignableRequest, signedHeaders: string[], sdkDate: string, payloadSha256: string, sk: string): string {
  const headerValue = (name: string): string => {
    const v = req.headers[name];
    return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
  };
  const canonicalHeaders = signedHeaders.map((h) => `${h}:${headerValue(h)}\n`).join('');
  const contentSha = headerValue('x-sdk-content-sha256');
  const canonical = [
    req.method.toUpperCase(),
    canonicalUri(req.path),
    canonicalQuery(req.query),
    canonicalHeaders,
    signedHeaders.join(';'),
    contentSha || payloadSha256,
  ].join('\n');
  const stringToSign = ['SDK-HMAC-SHA256', sdkDate, createHash('sha256').update(canonical, 'utf8').digest('hex')].join('\n');
  return createHmac('sha256', sk).update(stringToSign, 'utf8').digest('hex');
}
