// Token lifetime with a fake clock: a token works for 24 hours, then 401.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/sms-server/api-error.js';
import { Authenticator } from '../../../src/sms-server/auth.js';
import { Credentials } from '../../../src/sms-server/credentials.js';
import { Store } from '../../../src/sms-server/store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('control-plane tokens', () => {
  it('expire after 24 hours', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-auth-'));
    dirs.push(dir);
    const store = await Store.open(dir);
    let now = Date.UTC(2026, 0, 1);
    const auth = new Authenticator(store, new Credentials({ access_keys: [], users: [{ name: 'u', password: 'password1' }] }), () => now);
    const { token } = await auth.issueToken({ auth: { identity: { methods: ['password'], password: { user: { name: 'u', password: 'password1', domain: { name: 'd' } } } } } });
    const req = { method: 'GET', rawUrl: '/v3/sources', headers: { 'x-auth-token': token } };
    expect(auth.authenticate(req, '')).toEqual({ kind: 'token', name: 'u' });
    now += 24 * 3600_000 - 1000;
    expect(auth.authenticate(req, '').name).toBe('u');
    now += 2000;
    try {
      auth.authenticate(req, '');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      expect((e as ApiError).status).toBe(401);
      expect((e as ApiError).code).toBe('SMS.6521');
    }
    await store.close();
  });
});
