// Our SDK-HMAC-SHA256 signer against the official Huawei Cloud SDK core
// (the oracle): for the same request both produce the same Authorization
// header, our verifier accepts what the SDK signs, and rejects tampering,
// a wrong key and a stale X-Sdk-Date.

import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  encodePathSegment,
  encodeQuery,
  formatSdkDate,
  parseSdkDate,
  signRequest,
  verifyRequest,
} from '../../../src/sms/aksk-signer.js';

const require = createRequire(import.meta.url);
const { AKSKSigner } = require('@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner') as {
  AKSKSigner: { sign(request: unknown, credential: unknown): Record<string, string> };
};
const { BasicCredentials } = require('@huaweicloud/huaweicloud-sdk-core') as {
  BasicCredentials: new () => {
    withAk(ak: string): InstanceType<typeof BasicCredentials>;
    withSk(sk: string): InstanceType<typeof BasicCredentials>;
    withProjectId(id: string): InstanceType<typeof BasicCredentials>;
    withSecurityToken(t: string): InstanceType<typeof BasicCredentials>;
    processAuthRequest(client: unknown, request: Record<string, unknown>): Promise<{ headers: Record<string, string> }>;
  };
};

const AK = 'HPUAXXXXXXXXXXXXXXXX';
const SK = 'sk+/with=odd&chars-0123456789abcdefXXXXXXXX';
const BASE = 'http://127.0.0.1:18443';
const DATE = '20261125T123456Z';
const NOW = parseSdkDate(DATE)!;

interface Case {
  name: string;
  method: string;
  segments: string[];
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  data?: unknown;
}

const CASES: Case[] = [
  { name: 'GET with a query', method: 'GET', segments: ['v3', 'sources'], query: { limit: '10', offset: '0' } },
  { name: 'GET without query', method: 'GET', segments: ['v3', 'sources', 'f32ab4d6-d150-4fb3-aa55-edbb5cf9947f', 'command'] },
  {
    name: 'POST with a JSON body',
    method: 'POST',
    segments: ['v3', 'tasks', '7a9a9540-ff28-4869-b9e4-855fbe12xxxx', 'action'],
    data: { operation: 'start', is_need_consistency_check: true },
  },
  {
    name: 'PUT with unicode in body',
    method: 'PUT',
    segments: ['v3', 'tasks', 't1', 'progress'],
    data: { subtask_name: 'MIGRATE_LINUX_BLOCK', progress: 42, replicatesize: 1, totalsize: 2, process_trace: 'π ✓ "quoted" \\ ü' },
  },
  {
    name: 'path segments with special characters',
    method: 'DELETE',
    segments: ['v3', 'sources', 'a b/c%d+e&f=g?h#i ü 😀', ''],
  },
  {
    name: 'query with reserved characters, unicode, repeats and empty values',
    method: 'GET',
    segments: ['v3', 'tasks'],
    query: { name: 'my task/ü + 100%', state: 'RUNNING', zeta: '', 'a b': ['z', 'a', 'm'], '~_.-': '*!()\'' },
  },
  {
    name: 'extra headers are signed too',
    method: 'POST',
    segments: ['v3', 'sources', 's1', 'command_result'],
    headers: { 'X-Custom-Header': 'value', 'X-Request-Id': 'abc-123' },
    data: { command_name: 'START', result: 'success', result_detail: { msg: 'ok' } },
  },
];

function pathOf(c: Case): string {
  return '/' + c.segments.map(encodePathSegment).join('/');
}

function sdkSign(c: Case, extra: Record<string, string> = {}): Record<string, string> {
  const cred = new BasicCredentials().withAk(AK).withSk(SK);
  return AKSKSigner.sign(
    {
      endpoint: BASE + pathOf(c),
      method: c.method,
      headers: { 'Content-Type': 'application/json', 'X-Sdk-Date': DATE, ...c.headers, ...extra },
      queryParams: c.query ?? {},
      data: c.data,
    },
    cred,
  );
}

function oursSign(c: Case, creds: { securityToken?: string; projectId?: string } = {}): Record<string, string> {
  const query = c.query ? encodeQuery(c.query) : '';
  return signRequest(
    {
      method: c.method,
      url: BASE + pathOf(c) + (query ? '?' + query : ''),
      headers: { 'Content-Type': 'application/json', 'X-Sdk-Date': DATE, ...c.headers },
      body: c.data === undefined ? undefined : JSON.stringify(c.data),
    },
    { ak: AK, sk: SK, ...creds },
    NOW,
  );
}

/** The query as an HTTP client like axios puts it on the wire ('+' for spaces). */
function formEncodedQuery(q: Record<string, string | string[]> | undefined): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) for (const item of Array.isArray(v) ? v : [v]) p.append(k, item);
  return p.toString();
}

describe('AK/SK signer interop with the Huawei Cloud SDK core', () => {
  for (const c of CASES) {
    it(`${c.name}: same Authorization as the SDK`, () => {
      expect(oursSign(c).Authorization).toBe(sdkSign(c).Authorization);
    });

    it(`${c.name}: our verifier accepts the SDK's signature`, () => {
      const sdk = sdkSign(c);
      const q = formEncodedQuery(c.query);
      const result = verifyRequest(
        {
          method: c.method,
          rawUrl: pathOf(c) + (q ? '?' + q : ''),
          headers: sdk,
          body: c.data === undefined ? undefined : JSON.stringify(c.data),
        },
        (ak) => (ak === AK ? SK : undefined),
        { now: NOW },
      );
      expect(result).toEqual({ ok: true, access: AK });
    });

    it(`${c.name}: the SDK's computation accepts our signature`, () => {
      // The SDK has no verifier: re-sign with the SDK over exactly the headers
      // we sent (minus Authorization) and compare.
      const ours = oursSign(c);
      const { Authorization, host, ...sent } = ours;
      const again = AKSKSigner.sign(
        {
          endpoint: BASE + pathOf(c),
          method: c.method,
          headers: { ...sent, host },
          queryParams: c.query ?? {},
          data: c.data,
        },
        new BasicCredentials().withAk(AK).withSk(SK),
      );
      expect(again.Authorization).toBe(Authorization);
    });
  }

  it('X-Project-Id and X-Security-Token are added and signed as the SDK credentials do', async () => {
    const c = CASES[2]!;
    const cred = new BasicCredentials().withAk(AK).withSk(SK).withProjectId('proj-0001').withSecurityToken('sec-token-xyz');
    const request = {
      endpoint: BASE,
      url: pathOf(c),
      method: c.method,
      headers: { 'Content-Type': 'application/json', 'X-Sdk-Date': DATE },
      queryParams: {},
      data: c.data,
    };
    const signed = await cred.processAuthRequest(undefined, request);
    const ours = oursSign(c, { projectId: 'proj-0001', securityToken: 'sec-token-xyz' });
    expect(ours['X-Project-Id']).toBe('proj-0001');
    expect(ours['X-Security-Token']).toBe('sec-token-xyz');
    expect(ours.Authorization).toBe(signed.headers.Authorization);
    expect(ours.Authorization).toContain('x-project-id;x-sdk-date;x-security-token');
  });
});

describe('AK/SK verification failures', () => {
  const c = CASES[2]!;
  const body = JSON.stringify(c.data);
  const lookup = (ak: string) => (ak === AK ? SK : undefined);
  const verify = (headers: Record<string, string>, b = body, now = NOW, rawUrl = pathOf(c)) =>
    verifyRequest({ method: c.method, rawUrl, headers, body: b }, lookup, { now });

  it('rejects a tampered body, path, header or method', () => {
    const h = oursSign(c);
    expect(verify(h, body.replace('start', 'stop'))).toMatchObject({ ok: false, reason: 'signature_mismatch' });
    expect(verify(h, body, NOW, pathOf(c).replace('action', 'actions'))).toMatchObject({ ok: false, reason: 'signature_mismatch' });
    expect(verify({ ...h, 'Content-Type': 'text/plain' })).toMatchObject({ ok: false, reason: 'signature_mismatch' });
    expect(verifyRequest({ method: 'PUT', rawUrl: pathOf(c), headers: h, body }, lookup, { now: NOW })).toMatchObject({
      ok: false,
      reason: 'signature_mismatch',
    });
  });

  it('rejects a wrong SK, an unknown AK and a missing Authorization', () => {
    const h = signRequest({ method: c.method, url: BASE + pathOf(c), headers: { 'X-Sdk-Date': DATE }, body }, { ak: AK, sk: 'wrong' });
    expect(verify(h)).toMatchObject({ ok: false, reason: 'signature_mismatch' });
    const other = signRequest({ method: c.method, url: BASE + pathOf(c), headers: { 'X-Sdk-Date': DATE }, body }, { ak: 'OTHER', sk: SK });
    expect(verify(other)).toMatchObject({ ok: false, reason: 'unknown_access_key' });
    const { Authorization: _a, ...none } = oursSign(c);
    expect(verify(none)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('rejects an X-Sdk-Date outside the allowed skew, and a malformed one', () => {
    const h = oursSign(c);
    expect(verify(h, body, new Date(NOW.getTime() + 16 * 60_000))).toMatchObject({ ok: false, reason: 'stale_date' });
    expect(verify(h, body, new Date(NOW.getTime() - 14 * 60_000))).toMatchObject({ ok: true });
    expect(verify({ ...h, 'X-Sdk-Date': '2026-11-25T12:34:56Z' })).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('formats and parses X-Sdk-Date', () => {
    expect(formatSdkDate(new Date(Date.UTC(2024, 3, 16, 9, 53, 41, 999)))).toBe('20240416T095341Z');
    expect(parseSdkDate('20240416T095341Z')?.toISOString()).toBe('2024-04-16T09:53:41.000Z');
    expect(parseSdkDate('20241316T095341Z')).toBeUndefined();
  });
});
