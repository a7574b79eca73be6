// Credentials files (JSON or YAML, owner-only) and the --listen syntax.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseListen } from '../../../src/sms-server/control-plane.js';
import { Credentials, loadCredentialsFile } from '../../../src/sms-server/credentials.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-creds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

describe('control-plane credentials', () => {
  it('reads JSON and YAML', async () => {
    const json = await loadCredentialsFile(file('c.json', JSON.stringify({ access_keys: [{ ak: 'A1', sk: 'secret-one' }], users: [{ name: 'u', password: 'password-1' }] })));
    const yaml = await loadCredentialsFile(file('c.yaml', 'access_keys:\n  - ak: A1\n    sk: secret-one\nusers:\n  - name: u\n    password: password-1\n'));
    expect(json).toEqual(yaml);
    const c = new Credentials(json);
    expect(c.secretFor('A1')?.sk).toBe('secret-one');
    expect(c.checkPassword('u', 'password-1', 'any')).toBe(true);
    expect(c.checkPassword('u', 'password-2', undefined)).toBe(false);
    expect(c.checkPassword('nobody', 'password-1', undefined)).toBe(false);
  });

  it('refuses a file others can read, a malformed one, and unknown keys, naming the problem', async () => {
    await expect(loadCredentialsFile(file('open.json', '{}', 0o640))).rejects.toThrow(/chmod 600/);
    await expect(loadCredentialsFile(file('bad.yaml', 'access_keys: [\n'))).rejects.toThrow(/neither valid JSON nor YAML/);
    await expect(loadCredentialsFile(file('short.json', JSON.stringify({ access_keys: [{ ak: 'A', sk: 'short' }] })))).rejects.toThrow(/access_keys\.0\.sk/);
    await expect(loadCredentialsFile(file('typo.json', JSON.stringify({ acces_keys: [] })))).rejects.toThrow(/acces_keys|Unrecognized/);
    await expect(loadCredentialsFile(join(dir, 'missing.json'))).rejects.toThrow(/ENOENT/);
  });

  it('never puts a secret in an error', async () => {
    const err = await loadCredentialsFile(file('leak.json', JSON.stringify({ access_keys: [{ ak: 'A', sk: 'super-secret-value', extra: 1 }] }))).catch((e: Error) => e);
    expect(String(err)).not.toContain('super-secret-value');
  });

  it('parses --listen', () => {
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen('[::1]:8443')).toEqual({ host: '::1', port: 8443 });
    expect(() => parseListen('8443')).toThrow(/HOST:PORT/);
    expect(() => parseListen('host:70000')).toThrow(/out of range/);
  });
});
