// The one error type the control-plane client throws. `code` is the SMS
// error code from the response body when there is one, else the SMS code
// ferry maps the failure to (SMS.0301 network, SMS.0302 DNS, SMS.0203
// timeout, SMS.0304 TLS, SMS.0205 clock skew, SMS.0426 body too long, SMS.1702
// malformed JSON, SMS.9001 invalid request), else FERRY_HTTP_<status> or
// FERRY_BAD_RESPONSE / FERRY_ABORTED. Messages never contain secrets.
// Whether to call again is its `recovery`: the HTTP status decides for an
// answer (recoveryOfStatus), the kind of network failure for no answer.

import { FerryError, type ErrorCode, type ReceivedCode, type Recovery } from '../errors/ferry-error.js';
import { recoveryOfStatus } from '../errors/codes.js';
import type { ErrorDetail } from '../sms/schemas/common.js';

export interface SmsApiErrorInit {
  /** HTTP status, when a response arrived. */
  status?: number;
  /** error_code / error_msg / details / error_param from the response body. */
  errorCode?: string;
  errorMsg?: string;
  errorDetails?: ErrorDetail[];
  errorParam?: string[];
  method?: string;
  /** The request path without query (ids only, no secrets). */
  path?: string;
  /** How many attempts were made. */
  attempts?: number;
  /**
   * Whether another attempt could succeed (network, 429, 5xx: 'retryable').
   * Not given: a refusal for good (4xx but 401 and 429) is 'permanent',
   * anything else goes by the code.
   */
  recovery?: Recovery;
  /** The server's Retry-After, in ms, when it sent one. */
  retryAfterMs?: number;
  cause?: unknown;
}

export class SmsApiError extends FerryError {
  readonly status?: number;
  readonly errorCode?: string;
  readonly errorMsg?: string;
  readonly errorDetails?: ErrorDetail[];
  readonly errorParam?: string[];
  readonly method?: string;
  readonly path?: string;
  readonly attempts?: number;
  readonly retryAfterMs?: number;

  /** `code`: the control plane's error_code verbatim when its body names one. */
  constructor(code: ErrorCode | ReceivedCode, message: string, init: SmsApiErrorInit = {}) {
    const refused = init.status !== undefined && recoveryOfStatus(init.status) === 'permanent';
    super(code, message, { cause: init.cause, recovery: init.recovery ?? (refused ? 'permanent' : undefined) });
    this.name = 'SmsApiError';
    this.status = init.status;
    this.errorCode = init.errorCode;
    this.errorMsg = init.errorMsg;
    this.errorDetails = init.errorDetails;
    this.errorParam = init.errorParam;
    this.method = init.method;
    this.path = init.path;
    this.attempts = init.attempts;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** Whether another attempt could succeed (network, 429, 5xx). */
  get retryable(): boolean {
    return this.recovery === 'retryable';
  }

  /** A JSON-able summary for logs and progress traces. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      status: this.status,
      error_code: this.errorCode,
      error_msg: this.errorMsg,
      details: this.errorDetails,
      method: this.method,
      path: this.path,
      attempts: this.attempts,
    };
  }
}
