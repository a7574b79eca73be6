// Authentication of `ferry control-plane` (SMS section 3.2): AK/SK requests
// signed by the official SDK signer and by ferry's own signer are accepted;
// a wrong signature, an unknown key, a tampered body, a stale X-Sdk-Date and
// a missing credential get the documented 401 bodies; IAM-style tokens are
// issued to users from a 0600 credentials file and survive a restart.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../../src/sms/aksk-signer.js';
import { errorBodySchema, passwordTokenRequest, tokenResponseSchema } from '../../../src/sms/schemas/index.js';
import { runFerry } from '../../helpers/cli.js';
import { removeDir, sdkDate, startLocalCp, type LocalCp, type Reply } from '../../helpers/control-plane.js';

const AK = 'AUTHTESTAK';
const SK = 'auth-test-secret-0001';
let dir: string;
let credFile: string;
let cp: LocalCp;

function expect401(r: Reply, code: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(401);
  const body = errorBodySchema.parse(r.body);
  expect(body.error_code).toBe(code);
  expect(body.error_msg).toEqual(expect.any(String));
  expect(JSON.stringify(r.body)).not.toContain(SK);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-cp-auth-'));
  credFile = join(dir, 'credentials.yaml');
  writeFileSync(
    credFile,
    [`access_keys:`, `  - ak: ${AK}`, `    sk: ${SK}`, `users:`, `  - name: operator`, `    password: correct-horse-battery`, `    domain: lab`, ''].join('\n'),
    { mode: 0o600 },
  );
  cp = await startLocalCp({ dataDir: join(dir, 'data'), credentials: credFile });
});
afterAll(async () => {
  await cp?.stop();
  removeDir(dir);
});

describe('control-plane authentication', () => {
  it('refuses a credentials file that others can read', async () => {
    const loose = join(dir, 'loose.json');
    writeFileSync(loose, JSON.stringify({ access_keys: [{ ak: 'x', sk: 'yyyyyyyyyy' }] }));
    chmodSync(loose, 0o644);
    const r = await runFerry(['control-plane', '--listen', '127.0.0.1:0', '--data', join(dir, 'other'), '--credentials', loose]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/chmod 600/);
  });

  it('accepts requests signed by the official SDK signer', async () => {
    const r = await cp.call('GET', '/v3/sources', undefined, { ak: AK, sk: SK, query: { limit: 5 } });
    expect(r.status).toBe(200);
  });

  it('accepts requests signed by ferry\'s signer, with a body', async () => {
    const body = JSON.stringify({ speed_limit: [] });
    const url = `${cp.url}/v3/tasks?limit=10&name=a%20b`;
    const headers = signRequest({ method: 'GET', url, headers: { 'Content-Type': 'application/json' } }, { ak: AK, sk: SK, projectId: 'p1' });
    const res = await request(url, { method: 'GET', headers, dispatcher: cp.dispatcher });
    expect(res.statusCode, await res.body.text()).toBe(200);
    const post = signRequest({ method: 'POST', url: `${cp.url}/v3/tasks/nope/speed-limit`, headers: { 'Content-Type': 'application/json' }, body }, { ak: AK, sk: SK });
    const res2 = await request(`${cp.url}/v3/tasks/nope/speed-limit`, { method: 'POST', headers: post, body, dispatcher: cp.dispatcher });
    // Authenticated, then the task is unknown (SMS.7703, HTTP 400 as section 5.1 lists it; issue 17).
    expect(res2.statusCode).toBe(400);
    expect((await res2.body.json() as { error_code: string }).error_code).toBe('SMS.7703');
  });

  it('rejects a wrong secret key, an unknown access key and a tampered body (SMS.0202)', async () => {
    expect401(await cp.call('GET', '/v3/sources', undefined, { ak: AK, sk: 'not-the-secret-key' }), 'SMS.0202');
    expect401(await cp.call('GET', '/v3/sources', undefined, { ak: 'NOSUCHAK', sk: SK }), 'SMS.0202');
    const tampered = await cp.call('PUT', '/v3/sources/x/changestate', { copystate: 'WAITING', migrationcycle: 'checking' }, {
      ak: AK,
      sk: SK,
      sendInstead: { copystate: 'ERROR', migrationcycle: 'replicating' },
    });
    expect401(tampered, 'SMS.0202');
  });

  it('rejects an X-Sdk-Date more than 15 minutes off (SMS.0205) and accepts one within', async () => {
    expect401(await cp.call('GET', '/v3/sources', undefined, { ak: AK, sk: SK, sdkDate: sdkDate(new Date(Date.now() - 16 * 60_000)) }), 'SMS.0205');
    expect401(await cp.call('GET', '/v3/sources', undefined, { ak: AK, sk: SK, sdkDate: sdkDate(new Date(Date.now() + 16 * 60_000)) }), 'SMS.0205');
    const ok = await cp.call('GET', '/v3/sources', undefined, { ak: AK, sk: SK, sdkDate: sdkDate(new Date(Date.now() - 10 * 60_000)) });
    expect(ok.status).toBe(200);
  });

  it('rejects a request without credentials (SMS.6522) and a garbage token (SMS.6521)', async () => {
    expect401(await cp.call('GET', '/v3/sources', undefined, { unsigned: true }), 'SMS.6522');
    expect401(await cp.call('GET', '/v3/tasks', undefined, { token: 'not-a-token' }), 'SMS.6521');
  });

  it('issues a 24 h token to a user and accepts it until a restart and after', async () => {
    const bad = await cp.call('POST', '/v3/auth/tokens', passwordTokenRequest({ user: 'operator', password: 'wrong-password', domain: 'lab' }), { unsigned: true });
    expect401(bad, 'SMS.6521');
    const wrongDomain = await cp.call('POST', '/v3/auth/tokens', passwordTokenRequest({ user: 'operator', password: 'correct-horse-battery', domain: 'other' }), { unsigned: true });
    expect401(wrongDomain, 'SMS.6521');
    const r = await cp.call('POST', '/v3/auth/tokens', passwordTokenRequest({ user: 'operator', password: 'correct-horse-battery', domain: 'lab' }), { unsigned: true });
    expect(r.status).toBe(201);
    const token = r.headers['x-subject-token'] as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    const expires = Date.parse(tokenResponseSchema.parse(r.body).token.expires_at!);
    expect(Math.abs(expires - Date.now() - 24 * 3600_000)).toBeLessThan(60_000);
    expect((await cp.call('GET', '/v3/sources', undefined, { token })).status).toBe(200);

    await cp.stop();
    cp = await startLocalCp({ dataDir: join(dir, 'data'), credentials: credFile });
    expect((await cp.call('GET', '/v3/sources', undefined, { token })).status).toBe(200);
  });
});
