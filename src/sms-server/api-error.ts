// Errors the local control plane answers with: an HTTP status plus the SMS
// error body of section 3.3 / 5.1 (`error_code`, `error_msg`, and for 4xx
// the `error_param` and `details` the tables document). Handlers throw them;
// the HTTP layer turns them into responses.

import { FerryError } from '../errors/ferry-error.js';
import { recoveryOfStatus } from '../errors/codes.js';
import type { SmsCode } from '../errors/sms-codes.js';

export interface SmsErrorBody {
  error_code: string;
  error_msg: string;
  encoded_authorization_message?: string;
  error_param?: string[];
  details?: { error_code: string; error_msg: string }[];
}

export class ApiError extends FerryError {
  readonly status: number;
  readonly params: string[];

  constructor(status: number, code: SmsCode, message: string, params: string[] = []) {
    super(code, message, { recovery: recoveryOfStatus(status) });
    this.name = 'ApiError';
    this.status = status;
    this.params = params.slice(0, 20).map((p) => p.slice(0, 1024));
  }

  body(): SmsErrorBody {
    const msg = this.message.slice(0, 1024);
    if (this.status === 401) return { error_code: this.code, error_msg: msg };
    return {
      error_code: this.code,
      error_msg: msg,
      error_param: this.params.length ? this.params : [msg],
      details: [{ error_code: this.code, error_msg: msg }],
    };
  }
}

export const badRequest = (code: SmsCode, message: string, params?: string[]) => new ApiError(400, code, message, params);
export const unauthorized = (code: SmsCode, message: string) => new ApiError(401, code, message);
