// One control-plane call, end to end: URL and JSON body, authentication
// headers, the request on the shared dispatcher, a size-capped body read,
// response validation, the SMS error body, clock-skew detection, and the
// retry loop (exponential backoff with full jitter, Retry-After honoured,
// bounded in attempts and elapsed time; network errors, 429 and 5xx retried,
// other 4xx not; one credential renewal on a 401). Everything that fails
// becomes an SmsApiError.

import type { IncomingHttpHeaders } from 'node:http';
import { request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import type { Logger } from '../platform/log.js';
import { encodeQuery } from '../sms/aksk-signer.js';
import { fullJitterDelay, parseRetryAfter, sleep, type BackoffPolicy } from './backoff.js';
import type { ControlPlaneOptions } from './client-options.js';
import { classifyTransportError } from './dispatcher.js';
import { describeIssues, errorBodySchema } from '../sms/schemas/common.js';
import { SmsApiError } from './sms-api-error.js';
import { receivedCode, type ErrorCode } from '../errors/ferry-error.js';
import { recoveryOfStatus } from '../errors/codes.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type QueryValue = string | number | boolean | undefined;

export interface OutgoingRequest {
  method: HttpMethod;
  url: URL;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** Adds credentials to a request; renews them when the server says 401. */
export interface Authenticator {
  /** Headers to send (the given ones plus credentials). */
  authorize(req: OutgoingRequest, signal?: AbortSignal): Promise<Record<string, string>>;
  /** Called once per call on a 401: true when fresh credentials are worth one more attempt. */
  renew(): Promise<boolean>;
  /** Strings that must never appear in an error message. */
  secrets(): string[];
  /** The SMS code for a 401 whose body names none (AK/SK: SMS.0202). */
  readonly unauthorizedCode?: ErrorCode;
}

export interface CallSpec<T> {
  method: HttpMethod;
  /** Path with every variable segment already encoded (encodePathSegment). */
  path: string;
  query?: Record<string, QueryValue>;
  /** A JSON-serialisable body, already validated by the caller. */
  body?: unknown;
  /** Raw bytes instead of a JSON body (uploads), sent with `contentType`. */
  rawBody?: Uint8Array;
  contentType?: string;
  /** Extra request headers (signed too, under AK/SK). */
  headers?: Record<string, string>;
  /** 'json': parse and validate with `response`; 'none': read and ignore the body. */
  expect: 'json' | 'none';
  response?: z.ZodType<T>;
  /** false: no credentials (the token request itself). Default true. */
  auth?: boolean;
  /** Another origin for this call (the IAM endpoint). */
  baseUrl?: string;
  /** false: a request the server must not see twice; retried only when it surely never arrived. */
  idempotent?: boolean;
  signal?: AbortSignal;
}

export interface CallResult<T> {
  status: number;
  headers: IncomingHttpHeaders;
  data: T;
}

/** Errors raised while obtaining credentials (the token request): never retried by the outer call. */
const credentialFailures = new WeakSet<SmsApiError>();

export class Transport {
  authenticator?: Authenticator;
  /** Local clock minus the server's Date header, from the last response (ms). */
  lastClockSkewMs?: number;
  private skewWarned = false;
  private readonly policy: BackoffPolicy;

  constructor(
    private readonly options: ControlPlaneOptions,
    private readonly dispatcher: Dispatcher,
    private readonly logger?: Logger,
    private readonly baseSignal?: AbortSignal,
    private readonly random: () => number = Math.random,
  ) {
    this.policy = {
      maxAttempts: options.retry.max_attempts,
      maxElapsedMs: options.retry.max_elapsed_ms,
      baseDelayMs: options.retry.base_delay_ms,
      maxDelayMs: options.retry.max_delay_ms,
    };
  }

  async call<T>(spec: CallSpec<T>): Promise<CallResult<T>> {
    const signals = [this.baseSignal, spec.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    const started = Date.now();
    const useAuth = spec.auth !== false;
    let renewed = false;
    let attempt = 0;

    for (;;) {
      attempt++;
      this.throwIfAborted(spec, signal, attempt);
      let failure: SmsApiError;
      let retryAfterMs: number | undefined;
      try {
        return await this.once(spec, useAuth, signal, attempt);
      } catch (err) {
        if (!(err instanceof SmsApiError)) throw err;
        if (err.code === 'FERRY_ABORTED' || credentialFailures.has(err)) throw err;
        failure = err;
        retryAfterMs = err.retryAfterMs;
      }

      if (failure.status === 401 && useAuth && !renewed && this.authenticator) {
        renewed = true;
        let again = false;
        try {
          again = await this.authenticator.renew();
        } catch {
          again = false;
        }
        if (again) {
          this.logger?.warn({ method: spec.method, path: spec.path }, 'control plane answered 401: credentials renewed, trying once more');
          attempt--; // the renewal retry does not count against the budget
          continue;
        }
      }

      const retryable = failure.retryable && (spec.idempotent !== false || this.surelyNotSent(failure));
      if (!retryable) throw failure;
      const elapsed = Date.now() - started;
      const delay = retryAfterMs ?? fullJitterDelay(this.policy, attempt - 1, this.random);
      if (attempt >= this.policy.maxAttempts || elapsed + delay > this.policy.maxElapsedMs) {
        throw withAttempts(failure, attempt, retryAfterMs !== undefined && elapsed + delay > this.policy.maxElapsedMs ? retryAfterMs : undefined);
      }
      this.logger?.warn(
        { method: spec.method, path: spec.path, code: failure.code, status: failure.status, attempt, delayMs: delay },
        'control-plane call failed; retrying',
      );
      try {
        await sleep(delay, signal);
      } catch {
        throw aborted(spec, attempt);
      }
    }
  }

  private surelyNotSent(err: SmsApiError): boolean {
    if (err.status === 429) return true;
    const cause = err.cause as { code?: string } | undefined;
    return err.status === undefined && (cause?.code === 'ECONNREFUSED' || cause?.code === 'UND_ERR_CONNECT_TIMEOUT');
  }

  private throwIfAborted(spec: CallSpec<unknown>, signal: AbortSignal | undefined, attempt: number): void {
    if (signal?.aborted) throw aborted(spec, attempt - 1);
  }

  private async once<T>(spec: CallSpec<T>, useAuth: boolean, signal: AbortSignal | undefined, attempt: number): Promise<CallResult<T>> {
    const url = new URL(spec.path, spec.baseUrl ?? this.options.endpoint);
    if (spec.baseUrl === undefined) {
      // keep a path prefix of the endpoint (https://host/prefix + /v3/…)
      const base = new URL(this.options.endpoint);
      if (base.pathname !== '/' && base.pathname !== '') url.pathname = base.pathname.replace(/\/$/, '') + spec.path;
    }
    const query = spec.query ? encodeQuery(spec.query) : '';
    if (query) url.search = '?' + query;
    const body = spec.rawBody ?? (spec.body === undefined ? undefined : JSON.stringify(spec.body));
    let headers: Record<string, string> = {
      'Content-Type': spec.contentType ?? 'application/json;charset=utf8',
      Accept: 'application/json',
      ...spec.headers,
    };
    const where = `${spec.method} ${spec.path}`;

    if (useAuth) {
      if (!this.authenticator) throw new SmsApiError('FERRY_NO_AUTH', `${where}: no credentials configured`);
      try {
        headers = await this.authenticator.authorize({ method: spec.method, url, headers, body }, signal);
      } catch (err) {
        // The token request already ran its own retries: its failure is final here.
        if (err instanceof SmsApiError) credentialFailures.add(err);
        throw err;
      }
    }
    const { host: _host, ...sendHeaders } = headers;

    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: spec.method, headers: sendHeaders, body, dispatcher: this.dispatcher, signal });
    } catch (err) {
      throw this.transportError(err, spec, signal, attempt);
    }

    let text: string;
    try {
      text = await readCapped(res.body, this.options.max_response_bytes);
    } catch (err) {
      if (err instanceof SmsApiError) throw this.redact(new SmsApiError(err.code, `${where}: ${err.message}`, { status: res.statusCode, method: spec.method, path: spec.path, attempts: attempt }));
      throw this.transportError(err, spec, signal, attempt);
    }

    this.observeClock(res.headers.date);
    const status = res.statusCode;
    if (status >= 200 && status < 300) {
      if (spec.expect === 'none' || !spec.response) return { status, headers: res.headers, data: undefined as T };
      let json: unknown;
      if (text.trim() === '') json = undefined;
      else {
        try {
          json = JSON.parse(text);
        } catch {
          throw new SmsApiError('SMS.1702', `${where}: the control plane answered HTTP ${status} with a body that is not JSON`, {
            status,
            method: spec.method,
            path: spec.path,
            attempts: attempt,
          });
        }
      }
      const parsed = spec.response.safeParse(json);
      if (!parsed.success) {
        throw new SmsApiError('FERRY_BAD_RESPONSE', `${where}: unexpected response shape: ${describeIssues(parsed.error)}`, {
          status,
          method: spec.method,
          path: spec.path,
          attempts: attempt,
        });
      }
      return { status, headers: res.headers, data: parsed.data };
    }

    throw this.httpError(spec, status, res.headers, text, attempt);
  }

  private observeClock(date: string | string[] | undefined): void {
    const value = Array.isArray(date) ? date[0] : date;
    if (!value) return;
    const server = Date.parse(value);
    if (Number.isNaN(server)) return;
    this.lastClockSkewMs = Date.now() - server;
    const skewed = Math.abs(this.lastClockSkewMs) > this.options.max_clock_skew_ms;
    if (skewed && !this.skewWarned) {
      this.logger?.warn(
        { clockSkewMs: this.lastClockSkewMs },
        'the local clock differs from the control plane\'s by more than max_clock_skew_ms: signed requests will be refused (SMS.0205); correct the time or time zone',
      );
    }
    this.skewWarned = skewed;
  }

  private httpError(spec: CallSpec<unknown>, status: number, headers: IncomingHttpHeaders, text: string, attempt: number): SmsApiError {
    let body: z.infer<typeof errorBodySchema> | undefined;
    try {
      const parsed = errorBodySchema.safeParse(JSON.parse(text));
      if (parsed.success) body = parsed.data;
    } catch {
      body = undefined;
    }
    const where = `${spec.method} ${spec.path}`;
    const errorCode = body?.error_code ?? undefined;
    const errorMsg = body?.error_msg ?? undefined;
    const said = errorCode || errorMsg ? `${errorCode ?? ''}${errorCode && errorMsg ? ': ' : ''}${errorMsg ?? ''}` : snippet(text);
    const skew = this.lastClockSkewMs;
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(headers['retry-after']) : undefined;
    const init = {
      status,
      retryAfterMs,
      errorCode,
      errorMsg,
      errorDetails: body?.details ?? undefined,
      errorParam: body?.error_param ?? undefined,
      method: spec.method,
      path: spec.path,
      attempts: attempt,
      recovery: recoveryOfStatus(status),
    };
    let err: SmsApiError;
    if ((status === 401 || status === 403) && skew !== undefined && Math.abs(skew) > this.options.max_clock_skew_ms) {
      const secs = Math.round(Math.abs(skew) / 1000);
      err = new SmsApiError(
        'SMS.0205',
        `${where}: authentication failed (HTTP ${status}${said ? `, ${said}` : ''}) and the local clock is ${secs} s ${skew > 0 ? 'ahead of' : 'behind'} the control plane's: correct the time or time zone of this server`,
        init,
      );
    } else {
      const fallback: ErrorCode = status === 401 && spec.auth !== false && this.authenticator?.unauthorizedCode ? this.authenticator.unauthorizedCode : `FERRY_HTTP_${status}`;
      err = new SmsApiError(errorCode !== undefined ? receivedCode(errorCode) : fallback, `${where}: HTTP ${status}${said ? ` ${said}` : ''}`, init);
    }
    return this.redact(err);
  }

  private transportError(err: unknown, spec: CallSpec<unknown>, signal: AbortSignal | undefined, attempt: number): SmsApiError {
    if (signal?.aborted) return aborted(spec, attempt);
    const f = classifyTransportError(err);
    const what =
      f.code === 'SMS.0304'
        ? 'TLS/SSL authentication failed'
        : f.code === 'SMS.0302'
          ? 'could not resolve the control-plane host'
          : f.code === 'SMS.0203'
            ? 'the control plane did not answer in time'
            : 'the request could not be sent';
    return this.redact(
      new SmsApiError(f.code, `${spec.method} ${spec.path}: ${what}. Cause: ${f.cause}`, {
        method: spec.method,
        path: spec.path,
        attempts: attempt,
        recovery: f.recovery,
        cause: err,
      }),
    );
  }

  /** Defence in depth: scrub any credential that found its way into an error (a server may echo it). */
  private redact(err: SmsApiError): SmsApiError {
    const secrets = [...(this.authenticator?.secrets() ?? []), ...proxySecrets(this.options.proxy)].filter((s) => s.length >= 4);
    if (secrets.length === 0) return err;
    const scrub = (s: string | undefined | null): string | undefined => {
      if (s === undefined || s === null) return undefined;
      let out = s;
      for (const secret of secrets) out = out.split(secret).join('[redacted]');
      return out;
    };
    const set = (key: string, value: unknown) => Object.defineProperty(err, key, { value, enumerable: key !== 'message', writable: true, configurable: true });
    set('message', scrub(err.message));
    if (err.errorMsg !== undefined) set('errorMsg', scrub(err.errorMsg));
    if (err.errorParam) set('errorParam', err.errorParam.map((p) => scrub(p) ?? ''));
    if (err.errorDetails) {
      set('errorDetails', err.errorDetails.map((d) => ({ ...d, error_code: scrub(d.error_code), error_msg: scrub(d.error_msg) })));
    }
    if (err.stack) set('stack', scrub(err.stack));
    return err;
  }
}

function withAttempts(err: SmsApiError, attempts: number, retryAfterMs?: number): SmsApiError {
  const note =
    retryAfterMs !== undefined
      ? ` (gave up after ${attempts} attempt(s): Retry-After ${Math.ceil(retryAfterMs / 1000)} s exceeds the retry budget)`
      : attempts > 1
        ? ` (gave up after ${attempts} attempts)`
        : '';
  const out = new SmsApiError(err.code, err.message + note, {
    status: err.status,
    errorCode: err.errorCode,
    errorMsg: err.errorMsg,
    errorDetails: err.errorDetails,
    errorParam: err.errorParam,
    method: err.method,
    path: err.path,
    attempts,
    recovery: err.recovery,
    retryAfterMs: err.retryAfterMs,
    cause: err.cause,
  });
  return out;
}

function aborted(spec: CallSpec<unknown>, attempts: number): SmsApiError {
  return new SmsApiError('FERRY_ABORTED', `${spec.method} ${spec.path}: aborted`, { method: spec.method, path: spec.path, attempts });
}

function proxySecrets(proxy: string | undefined): string[] {
  if (!proxy) return [];
  try {
    const u = new URL(proxy);
    return [decodeURIComponent(u.password)].filter(Boolean);
  } catch {
    return [];
  }
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? t.slice(0, 200) + '…' : t;
}

async function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > max) {
        body.destroy();
        throw new SmsApiError('SMS.0426', `Response body too long. Maximum length: ${max} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    body.destroy();
    throw err;
  }
  return Buffer.concat(chunks).toString('utf8');
}
