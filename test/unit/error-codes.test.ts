// Error codes are a typed set, and whether to try again is a property of
// the error: the table in src/errors/codes.ts gives each code's default, an
// error may say otherwise (an HTTP answer, a receiver's ERROR frame), and
// callers ask isRetryable() / recoveryOf() instead of comparing codes.
// This file pins that table and the boundaries where codes arrive from
// outside (ERROR frames, control-plane bodies). `npm run typecheck` checks
// it too: the @ts-expect-error lines fail the typecheck if a misspelt code
// ever compiles.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecError, FerryError, isRetryable, receivedCode, recoveryOf } from '../../src/errors/ferry-error.js';
import { FERRY_ERROR_CODES, isErrorCode, recoveryOfCode, recoveryOfStatus } from '../../src/errors/codes.js';
import { SMS_ERROR_CODES } from '../../src/errors/sms-codes.js';
import { SmsApiError } from '../../src/sms-client/sms-api-error.js';
import { ApiError, badRequest } from '../../src/sms-server/api-error.js';
import { errorFromFrame } from '../../src/replication/session/connect.js';
import { FrameType, type RawFrame } from '../../src/protocol/frames.js';
import { readManifestLines, readPartialManifestLines } from '../../src/replication/file/manifest.js';

describe('the recovery table', () => {
  it('retries what another attempt can cure: a network cut, an idle receiver, bytes damaged in transit', () => {
    for (const code of ['SMS.0807', 'FERRY_IDLE_TIMEOUT', 'FERRY_SOURCE_CHANGED', 'FERRY_CHUNK_HASH', 'SMS.0201', 'SMS.0203'] as const) {
      expect([code, isRetryable(new FerryError(code, 'x'))]).toEqual([code, true]);
    }
  });

  it('does not retry authentication, TLS, protocol, safety or space failures', () => {
    const fatalCodes = [
      'SMS.0202', // AK/SK authentication failed
      'SMS.0205', // clock skew
      'SMS.0304', // TLS / join token
      'SMS.1315', // no space on the target
      'SMS.0805', // the pass failed
      'FERRY_PROTOCOL_VERSION',
      'FERRY_FRAME_MALFORMED',
      'FERRY_UNSAFE_ENTRY',
      'FERRY_CHUNK_CORRUPT',
      'FERRY_HANDSHAKE_TIMEOUT',
      'FERRY_ABORTED',
    ] as const;
    for (const code of fatalCodes) expect([code, recoveryOf(new FerryError(code, 'x'))]).toEqual([code, 'fatal']);
  });

  it('says only retryable or fatal for a code: permanent comes from an answer, not a code', () => {
    const all = [...Object.keys(FERRY_ERROR_CODES), ...Object.keys(SMS_ERROR_CODES)];
    expect(all.length).toBeGreaterThan(100);
    for (const code of all) expect(['retryable', 'fatal']).toContain(recoveryOfCode(code));
    for (const [code, entry] of Object.entries(FERRY_ERROR_CODES)) expect([code, entry.meaning.length > 10]).toEqual([code, true]);
  });

  it('treats what is not a FerryError (a bug, a library error) and unknown codes as fatal', () => {
    expect(recoveryOf(new Error('connect ECONNREFUSED'))).toBe('fatal');
    expect(recoveryOf('a string')).toBe('fatal');
    expect(recoveryOf(new FerryError(receivedCode('SMS.9999'), 'a code from a newer peer'))).toBe('fatal');
  });

  it('lets one error say otherwise than its code', () => {
    const giveUp = new FerryError(receivedCode('FERRY_CHUNK_HASH'), 'refused the same frame 4 times', { recovery: 'fatal' });
    expect(giveUp.code).toBe('FERRY_CHUNK_HASH');
    expect(isRetryable(giveUp)).toBe(false);
  });

  it('knows which codes are ferry\'s', () => {
    expect(isErrorCode('SMS.0807')).toBe(true);
    expect(isErrorCode('FERRY_CHUNK_HASH')).toBe(true);
    expect(isErrorCode('FERRY_HTTP_418')).toBe(true);
    expect(isErrorCode('SMS.1205')).toBe(false);
    expect(isErrorCode('FERRY_NO_SUCH_CODE')).toBe(false);
  });

  it('refuses a misspelt code at compile time', () => {
    // @ts-expect-error 'FERRY_CHUNK_HASHH' is not a code ferry raises
    const e = new FerryError('FERRY_CHUNK_HASHH', 'x');
    // @ts-expect-error 'SMS.08O7' (letter O) is not an SMS code
    const f = new FerryError('SMS.08O7', 'x');
    // @ts-expect-error an external program's failure needs a FERRY_TOOL_* code, not free text
    const g = new ExecError('tool failed', 'x', 'cmd', 1, '');
    // @ts-expect-error the local control plane answers with SMS codes only
    const h = badRequest('FERRY_USAGE', 'x');
    expect([e, f, g, h].every((x) => x instanceof FerryError)).toBe(true);
  });
});

describe('HTTP answers: 4xx but 401 and 429 is permanent, written once', () => {
  it('classes statuses', () => {
    expect([429, 500, 502, 503].map(recoveryOfStatus)).toEqual(['retryable', 'retryable', 'retryable', 'retryable']);
    expect([400, 403, 404, 409, 413].map(recoveryOfStatus)).toEqual(['permanent', 'permanent', 'permanent', 'permanent', 'permanent']);
    expect([401, 302].map(recoveryOfStatus)).toEqual(['fatal', 'fatal']);
  });

  it('gives the control-plane client\'s errors the same recovery', () => {
    const refused = new SmsApiError(receivedCode('SMS.6021'), 'POST /commands: HTTP 400', { status: 400, recovery: recoveryOfStatus(400) });
    expect(recoveryOf(refused)).toBe('permanent');
    expect(refused.retryable).toBe(false);
    const busy = new SmsApiError('FERRY_HTTP_503', 'GET /commands: HTTP 503', { status: 503, recovery: recoveryOfStatus(503) });
    expect(busy.retryable).toBe(true);
    const auth = new SmsApiError('SMS.0202', 'GET /commands: HTTP 401', { status: 401, recovery: recoveryOfStatus(401) });
    expect(recoveryOf(auth)).toBe('fatal');
    // An answer the client could not read is still a refusal when its status says so.
    expect(recoveryOf(new SmsApiError('SMS.0426', 'body too long', { status: 404 }))).toBe('permanent');
    expect(recoveryOf(new SmsApiError('SMS.0426', 'body too long', { status: 503 }))).toBe('fatal');
    // No answer at all: the network failure decides.
    expect(new SmsApiError('SMS.0301', 'ECONNRESET', { recovery: 'retryable' }).retryable).toBe(true);
    expect(new SmsApiError('SMS.0302', 'ENOTFOUND', { recovery: 'fatal' }).retryable).toBe(false);
  });

  it('gives the local control plane\'s answers the recovery their status means', () => {
    expect(new ApiError(404, 'SMS.7703', 'Task does not exist').recovery).toBe('permanent');
    expect(new ApiError(401, 'SMS.6521', 'token').recovery).toBe('fatal');
    expect(new ApiError(500, 'SMS.6000', 'Service error').recovery).toBe('retryable');
  });
});

describe('a receiver\'s ERROR frame', () => {
  const frame = (body: object): RawFrame => ({ type: FrameType.ERROR, body: Buffer.from(JSON.stringify(body)) });

  it('carries the code verbatim and the receiver\'s word on reconnecting', () => {
    const e = errorFromFrame(frame({ code: 'FERRY_CHUNK_HASH', message: 'FILE_DATA at offset 0 failed its hash check', fatal: true, recovery: 'retryable' }));
    expect(e.code).toBe('FERRY_CHUNK_HASH');
    expect(e.message).toBe('receiver: FILE_DATA at offset 0 failed its hash check');
    expect(isRetryable(e)).toBe(true);
    expect(isRetryable(errorFromFrame(frame({ code: 'SMS.9999', message: 'new', fatal: true, recovery: 'retryable' })))).toBe(true);
    expect(isRetryable(errorFromFrame(frame({ code: 'SMS.0807', message: 'x', fatal: true, recovery: 'fatal' })))).toBe(false);
  });

  it('from a receiver that does not say: goes by the code, as agents always did', () => {
    expect(isRetryable(errorFromFrame(frame({ code: 'SMS.0807', message: 'hash check', fatal: true })))).toBe(true);
    expect(isRetryable(errorFromFrame(frame({ code: 'FERRY_UNSAFE_ENTRY', message: 'x', fatal: true })))).toBe(false);
    expect(isRetryable(errorFromFrame(frame({ code: 'SMS.9999', message: 'x', fatal: true })))).toBe(false);
  });

  it('that is malformed is fatal', () => {
    const e = errorFromFrame(frame({ code: 'SMS.0807', message: 'x', fatal: true, recovery: 'maybe' }));
    expect(e.code).toBe('FERRY_FRAME_MALFORMED');
    expect(isRetryable(e)).toBe(false);
  });
});

describe('a file manifest with a torn last line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-error-codes-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is read up to its last whole line by the partial reader, and refused by the full one with FERRY_MANIFEST_TORN', () => {
    const path = join(dir, 'torn.manifest');
    writeFileSync(path, '# ferry file manifest v1\na\tline\nb\tpart');
    expect([...readPartialManifestLines(path)]).toEqual(['a\tline']);
    expect(() => [...readManifestLines(path)]).toThrow(expect.objectContaining({ code: 'FERRY_MANIFEST_TORN' }));
  });

  it('is still refused by the partial reader when it is not a manifest at all', () => {
    const path = join(dir, 'other.manifest');
    writeFileSync(path, 'something else\n');
    expect(() => [...readPartialManifestLines(path)]).toThrow(/not a ferry file manifest/);
  });
});
