// The one error type the control-plane client throws. `code` is the SMS
// error code from the response body when there is one, else the SMS code
// ferry maps the failure to (SMS.0301 network, SMS.0302 DNS, SMS.0203
// timeout, SMS.0304 TLS, SMS.0205 clock skew, SMS.0426 body too long, SMS.1702
// malformed JSON, SMS.9001 invalid request), else FERRY_HTTP_<status> or
// FERRY_BAD_RESPONSE / FERRY_ABORTED. Messages never contain secrets.

import { FerryError } from '../errors.js';
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
  /** Whether another attempt could succeed (network, 429, 5xx). */
  retryable?: boolean;
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
  readonly retryable: boolean;
  readonly retryAfterMs?: number;

  constructor(code: string, message: string, init: SmsApiErrorInit = {}) {
    super(code, message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'SmsApiError';
    this.status = init.status;
    this.errorCode = init.errorCode;
    this.errorMsg = init.errorMsg;
    this.errorDetails = init.errorDetails;
    this.errorParam = init.errorParam;
    this.method = init.method;
    this.path = init.path;
    this.attempts = init.attempts;
    this.retryable = init.retryable ?? false;
    this.retryAfterMs = init.retryAfterMs;
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
