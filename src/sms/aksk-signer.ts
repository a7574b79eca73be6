// AK/SK request signing, SDK-HMAC-SHA256 (SMS v3 reference section 3.2), as
// the Huawei Cloud SDK core's AKSKSigner computes it, and the verification a
// server needs: the pieces (canonical URI, query, headers, payload hash,
// string to sign) are exported so that src/sms-server verifies with the very
// functions the client signs with.
//
//   CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n
//                      CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
//   StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(sha256(CanonicalRequest))
//   Signature        = hex(hmac-sha256(SK, StringToSign))
//   Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b;c, Signature=…
//
// Both ends work on the request as it travels: the raw (already
// percent-encoded) path and query string. Header names are compared in lower
// case and sorted by code unit; values are trimmed (Node's HTTP parser trims
// them on arrival anyway). One known divergence: the Node SDK orders the
// canonical header lines with localeCompare, which differs from code-unit
// order only for names with '_' or '.' (e.g. `x_a` and `x-b`); such headers
// are not signed by ferry and rarely survive proxies anyway. The SK never leaves this module: it is not in any
// error, and nothing here logs.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { compareCodeUnits } from '../platform/compare.js';

export const SIGNING_ALGORITHM = 'SDK-HMAC-SHA256';
export const HEADER_SDK_DATE = 'X-Sdk-Date';
export const HEADER_CONTENT_SHA256 = 'X-Sdk-Content-Sha256';
export const HEADER_SECURITY_TOKEN = 'X-Security-Token';
export const HEADER_PROJECT_ID = 'X-Project-Id';
export const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** How far X-Sdk-Date may be from the verifier's clock (API Gateway allows 15 minutes). */
export const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;

export interface AkSkCredentials {
  ak: string;
  sk: string;
  /** For a temporary access key: sent (and signed) as X-Security-Token. */
  securityToken?: string;
  /** Sent (and signed) as X-Project-Id. */
  projectId?: string;
}

export interface SignableRequest {
  method: string;
  /** Absolute URL whose path and query are already percent-encoded as they will be sent. */
  url: string | URL;
  /** The headers that will be sent; every one of them is signed. */
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** RFC 3986 unreserved characters stay; every other UTF-8 byte becomes %XX (upper case). */
export function sdkUrlEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const unreserved =
      (byte >= 0x30 && byte <= 0x39) || // 0-9
      (byte >= 0x41 && byte <= 0x5a) || // A-Z
      (byte >= 0x61 && byte <= 0x7a) || // a-z
      byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e; // - . _ ~
    out += unreserved ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Encodes one path segment for a request URL (the form our client puts on the wire). */
export const encodePathSegment = sdkUrlEncode;

/** The raw path (as sent, percent-encoded) with each segment encoded again and a trailing slash. */
export function canonicalUri(rawPath: string): string {
  if (rawPath === '') return rawPath;
  const uri = rawPath.split('/').map(sdkUrlEncode).join('/');
  return uri.endsWith('/') ? uri : uri + '/';
}

/**
 * The raw query string (without '?'), decoded, sorted by key then value
 * (code-unit order) and re-encoded. '+' decodes to a space, as form encoding
 * (and the SDK's HTTP client) sends it; ferry itself sends %20 and %2B.
 * Throws URIError on malformed escapes.
 */
export function canonicalQueryString(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decodeQueryComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decodeQueryComponent(part.slice(eq + 1));
    pairs.push([key, value]);
  }
  pairs.sort((a, b) => compareCodeUnits(a[0], b[0]) || compareCodeUnits(a[1], b[1]));
  return pairs.map(([k, v]) => `${sdkUrlEncode(k)}=${sdkUrlEncode(v)}`).join('&');
}

function decodeQueryComponent(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

/** Builds a query string the way ferry sends it (every reserved character escaped). */
export function encodeQuery(params: Record<string, string | number | boolean | readonly (string | number | boolean)[] | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) parts.push(`${sdkUrlEncode(k)}=${sdkUrlEncode(String(item))}`);
  }
  return parts.join('&');
}

/** Lower-cased names, sorted, joined with ';'. */
export function signedHeaderList(names: Iterable<string>): string[] {
  return [...new Set([...names].map((n) => n.toLowerCase()))].sort(compareCodeUnits);
}

/** `name:value\n` for each signed header, in SignedHeaders order. */
export function canonicalHeaders(headers: Record<string, string | string[] | undefined>, signed: readonly string[]): string {
  const lower = lowerCaseHeaders(headers);
  return signed.map((name) => `${name}:${(lower[name] ?? '').trim()}\n`).join('');
}

function lowerCaseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** X-Sdk-Content-Sha256 when the sender gave one, else sha256 of the body bytes. */
export function payloadHash(headers: Record<string, string | string[] | undefined>, body: string | Uint8Array | undefined): string {
  const given = lowerCaseHeaders(headers)[HEADER_CONTENT_SHA256.toLowerCase()];
  if (given) return given;
  if (body === undefined || body.length === 0) return EMPTY_BODY_SHA256;
  return sha256Hex(body);
}

export function canonicalRequest(parts: {
  method: string;
  rawPath: string;
  rawQuery: string;
  headers: Record<string, string | string[] | undefined>;
  signedHeaders: readonly string[];
  payloadHash: string;
}): string {
  return [
    parts.method.toUpperCase(),
    canonicalUri(parts.rawPath),
    canonicalQueryString(parts.rawQuery),
    canonicalHeaders(parts.headers, parts.signedHeaders),
    parts.signedHeaders.join(';'),
    parts.payloadHash,
  ].join('\n');
}

export function stringToSign(sdkDate: string, canonicalRequestText: string): string {
  return [SIGNING_ALGORITHM, sdkDate, sha256Hex(canonicalRequestText)].join('\n');
}

export function computeSignature(sk: string, stringToSignText: string): string {
  return createHmac('sha256', sk).update(stringToSignText).digest('hex');
}

/** 20240416T095341Z */
export function formatSdkDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** Parses YYYYMMDDTHHmmssZ; undefined when malformed. */
export function parseSdkDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  const date = new Date(t);
  if (Number.isNaN(t) || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return undefined;
  return date;
}

function splitUrl(url: string | URL): { host: string; rawPath: string; rawQuery: string } {
  const u = typeof url === 'string' ? new URL(url) : url;
  // URL.pathname/search are the serialized (percent-encoded) forms that go on the wire.
  return { host: u.host, rawPath: u.pathname, rawQuery: u.search.startsWith('?') ? u.search.slice(1) : u.search };
}

/**
 * Signs a request. Returns the headers to send: the caller's, plus Host,
 * X-Sdk-Date (unless given), X-Security-Token / X-Project-Id (when the
 * credentials carry them) and Authorization. Every returned header except
 * Authorization is signed.
 */
export function signRequest(req: SignableRequest, creds: AkSkCredentials, now: Date = new Date()): Record<string, string> {
  const { host, rawPath, rawQuery } = splitUrl(req.url);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.toLowerCase() !== 'authorization') headers[k] = v;
  }
  const has = (name: string) => Object.keys(headers).some((k) => k.toLowerCase() === name.toLowerCase());
  if (!has('host')) headers.host = host;
  if (!has(HEADER_SDK_DATE)) headers[HEADER_SDK_DATE] = formatSdkDate(now);
  if (creds.securityToken && !has(HEADER_SECURITY_TOKEN)) headers[HEADER_SECURITY_TOKEN] = creds.securityToken;
  if (creds.projectId && !has(HEADER_PROJECT_ID)) headers[HEADER_PROJECT_ID] = creds.projectId;

  const sdkDate = lowerCaseHeaders(headers)[HEADER_SDK_DATE.toLowerCase()]!;
  const signed = signedHeaderList(Object.keys(headers));
  const text = canonicalRequest({
    method: req.method,
    rawPath,
    rawQuery,
    headers,
    signedHeaders: signed,
    payloadHash: payloadHash(headers, req.body),
  });
  const signature = computeSignature(creds.sk, stringToSign(sdkDate, text));
  headers.Authorization = `${SIGNING_ALGORITHM} Access=${creds.ak}, SignedHeaders=${signed.join(';')}, Signature=${signature}`;
  return headers;
}

export interface ParsedAuthorization {
  access: string;
  signedHeaders: string[];
  signature: string;
}

/** Parses `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`; undefined when malformed. */
export function parseAuthorization(value: string | undefined): ParsedAuthorization | undefined {
  if (!value) return undefined;
  const m = /^SDK-HMAC-SHA256\s+(.*)$/.exec(value.trim());
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  for (const part of m[1]!.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return undefined;
    fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  const { Access: access, SignedHeaders: sh, Signature: signature } = fields;
  if (!access || !sh || !signature || !/^[0-9a-f]{64}$/i.test(signature)) return undefined;
  return { access, signedHeaders: sh.split(';').map((h) => h.trim().toLowerCase()).filter(Boolean), signature: signature.toLowerCase() };
}

export interface IncomingSignedRequest {
  method: string;
  /** The request target as received: raw path and query (e.g. node's req.url). */
  rawUrl: string;
  /** Received headers (any case; node gives lower case). */
  headers: Record<string, string | string[] | undefined>;
  body?: string | Uint8Array;
}

export type VerifyFailure =
  /** No or unparsable Authorization / X-Sdk-Date, or a required header not signed. */
  | 'malformed'
  /** The AK is not known. */
  | 'unknown_access_key'
  /** X-Sdk-Date too far from now (SMS.0205 on the client side). */
  | 'stale_date'
  /** The signature does not match (SMS.0202). */
  | 'signature_mismatch'
  /** The body is declared UNSIGNED-PAYLOAD and the verifier does not allow it. */
  | 'unsigned_payload';

export type VerifyResult = { ok: true; access: string } | { ok: false; reason: VerifyFailure; detail: string };

export interface VerifyOptions {
  now?: Date;
  maxSkewMs?: number;
  /** Accept X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD (the SDK's choice for non-JSON bodies). Default false. */
  allowUnsignedPayload?: boolean;
}

/** What the headers of a signed request carry once they have passed checkSignedHeaders. */
export interface SignedHeadersCheck {
  ok: true;
  access: string;
  sk: string;
  sdkDate: string;
  authorization: ParsedAuthorization;
  /** The request's headers, names in lower case. */
  headers: Record<string, string>;
  /** The declared X-Sdk-Content-Sha256 (lower case), when the request carries one. */
  declaredPayloadHash?: string;
}

/**
 * Everything about a signed request that its headers alone decide: the
 * Authorization header parses, X-Sdk-Date is well formed and within the
 * allowed skew, host and x-sdk-date are signed and every signed header is
 * present, a declared X-Sdk-Content-Sha256 is a hex digest (or an allowed
 * UNSIGNED-PAYLOAD) and the AK is known. A server runs this before reading
 * a body, so a stranger's request is refused without buffering a byte of it;
 * verifyRequest runs it again as its first half.
 */
export function checkSignedHeaders(
  req: Pick<IncomingSignedRequest, 'headers'>,
  lookupSecret: (ak: string) => string | undefined,
  options: VerifyOptions = {},
): SignedHeadersCheck | { ok: false; reason: VerifyFailure; detail: string } {
  const headers = lowerCaseHeaders(req.headers);
  const auth = parseAuthorization(headers.authorization);
  if (!auth) return { ok: false, reason: 'malformed', detail: 'missing or malformed SDK-HMAC-SHA256 Authorization header' };
  const sdkDate = headers[HEADER_SDK_DATE.toLowerCase()];
  const date = sdkDate === undefined ? undefined : parseSdkDate(sdkDate);
  if (!sdkDate || !date) return { ok: false, reason: 'malformed', detail: 'missing or malformed X-Sdk-Date header (want YYYYMMDDTHHmmssZ)' };
  for (const required of ['host', HEADER_SDK_DATE.toLowerCase()]) {
    if (!auth.signedHeaders.includes(required)) return { ok: false, reason: 'malformed', detail: `header ${required} is not signed` };
  }
  for (const name of auth.signedHeaders) {
    if (headers[name] === undefined) return { ok: false, reason: 'malformed', detail: `signed header ${name} is missing` };
  }
  const now = options.now ?? new Date();
  const skew = Math.abs(now.getTime() - date.getTime());
  if (skew > (options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS)) {
    return { ok: false, reason: 'stale_date', detail: `X-Sdk-Date ${sdkDate} is ${Math.round(skew / 1000)} s away from the server clock` };
  }
  const declared = headers[HEADER_CONTENT_SHA256.toLowerCase()];
  if (declared === 'UNSIGNED-PAYLOAD' && !options.allowUnsignedPayload) {
    return { ok: false, reason: 'unsigned_payload', detail: 'unsigned payloads are not accepted' };
  }
  if (declared !== undefined && declared !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/i.test(declared)) {
    return { ok: false, reason: 'malformed', detail: 'X-Sdk-Content-Sha256 is neither a hex SHA-256 nor UNSIGNED-PAYLOAD' };
  }
  const sk = lookupSecret(auth.access);
  if (sk === undefined) return { ok: false, reason: 'unknown_access_key', detail: 'unknown access key' };
  return { ok: true, access: auth.access, sk, sdkDate, authorization: auth, headers, ...(declared !== undefined && { declaredPayloadHash: declared.toLowerCase() }) };
}

/**
 * Verifies an incoming signed request against the SK of its Access key.
 * `lookupSecret` returns the SK or undefined for an unknown AK. Details name
 * what failed, never a secret.
 */
export function verifyRequest(
  req: IncomingSignedRequest,
  lookupSecret: (ak: string) => string | undefined,
  options: VerifyOptions = {},
): VerifyResult {
  const checked = checkSignedHeaders(req, lookupSecret, options);
  if (!checked.ok) return checked;
  const { sk, sdkDate, headers, authorization: auth } = checked;

  const q = req.rawUrl.indexOf('?');
  const rawPath = q < 0 ? req.rawUrl : req.rawUrl.slice(0, q);
  const rawQuery = q < 0 ? '' : req.rawUrl.slice(q + 1);
  let text: string;
  try {
    text = canonicalRequest({
      method: req.method,
      rawPath,
      rawQuery,
      headers,
      signedHeaders: auth.signedHeaders,
      payloadHash: payloadHash(headers, req.body),
    });
  } catch {
    return { ok: false, reason: 'malformed', detail: 'malformed percent-encoding in the query string' };
  }
  const expected = Buffer.from(computeSignature(sk, stringToSign(sdkDate, text)), 'hex');
  const given = Buffer.from(auth.signature, 'hex');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return { ok: false, reason: 'signature_mismatch', detail: 'signature does not match the request' };
  }
  return { ok: true, access: auth.access };
}
