// The agent config: defaults, validation errors that name the file and the
// key, and the refusal to read secrets from a file others can read.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configRedactions, configSecrets, defaultConfigPath, loadAgentConfig, parseAgentConfig } from '../../../src/config/agent-config.js';

const minimal = `control_plane:\n  endpoint: https://sms.example.com\n  auth:\n    token: tok-SECRET-1\n`;

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('agent config', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('fills in defaults for a minimal file', () => {
    const c = parseAgentConfig(minimal, '/etc/ferry/agent.yaml');
    expect(c.data_dir).toBe('/var/lib/ferry');
    expect(c.poll_interval).toBe(5);
    expect(c.log.level).toBe('info');
    expect(c.niceness).toEqual({ cpu: 10, io_class: 'best-effort', io_priority: 7 });
    expect(c.receiver.port).toBe(8900);
    expect(c.excludes).toEqual([]);
    expect(configSecrets(c)).toEqual(['tok-SECRET-1']);
  });

  it('takes the whole-server source from system.source_root and system.source_disks (default: / and every disk)', () => {
    // configure (default true) and keep_static_network (default false) come with them.
    expect(parseAgentConfig(minimal, 'a.yaml').system).toEqual({ source_root: '/', source_disks: [], configure: true, keep_static_network: false });
    const lab = parseAgentConfig(`${minimal}system:\n  source_root: /mnt/source\n  source_disks: [/dev/loop3, /dev/loop4]\n`, 'a.yaml');
    expect(lab.system).toEqual({ source_root: '/mnt/source', source_disks: ['/dev/loop3', '/dev/loop4'], configure: true, keep_static_network: false });
    expect(parseAgentConfig(`${minimal}system:\n  configure: false\n  keep_static_network: true\n`, 'a.yaml').system).toMatchObject({ configure: false, keep_static_network: true });
    expect(errorOf(() => parseAgentConfig(`${minimal}system:\n  configure: maybe\n`, 'a.yaml'))).toMatch(/system\.configure/);
    expect(errorOf(() => parseAgentConfig(`${minimal}system:\n  source_root: mnt\n`, '/etc/ferry/agent.yaml'))).toMatch(/^\/etc\/ferry\/agent\.yaml: system\.source_root: source_root must be an absolute path/);
    expect(errorOf(() => parseAgentConfig(`${minimal}system:\n  source_disks: [sda]\n`, 'a.yaml'))).toMatch(/system\.source_disks\.0: each source disk must be an absolute device path/);
  });

  it('accepts the shipped sample config', () => {
    const text = readFileSync(new URL('../../../packaging/agent.sample.yaml', import.meta.url), 'utf8');
    const c = parseAgentConfig(text, 'agent.sample.yaml');
    expect(c.sync.schedule).toBe('0 */6 * * *');
    expect('user' in c.control_plane.auth).toBe(true);
  });

  it('accepts JSON and all three auth forms', () => {
    const ak = parseAgentConfig(JSON.stringify({ control_plane: { endpoint: 'https://x', auth: { ak: 'AK', sk: 'SK' } } }), 'a.json');
    expect(configSecrets(ak)).toEqual(['SK']);
    const pw = parseAgentConfig(`control_plane:\n  endpoint: http://127.0.0.1:1\n  auth: {user: u, password: p, domain: d}\n`, 'a.yaml');
    expect(configSecrets(pw)).toEqual(['p']);
  });

  it('redacts the access key from logs with the secrets', () => {
    const ak = parseAgentConfig(JSON.stringify({ control_plane: { endpoint: 'https://x', auth: { ak: 'AK-VALUE', sk: 'SK-VALUE' } } }), 'a.json');
    expect(configRedactions(ak)).toEqual(['SK-VALUE', 'AK-VALUE']);
  });

  it('names the file and the key in every error', () => {
    const msg = errorOf(() =>
      parseAgentConfig(`control_plane:\n  endpoint: ftp://x\n  auth: {token: t}\npoll_interval: 0\nbogus: 1\n`, '/etc/ferry/agent.yaml'),
    );
    expect(msg).toMatch(/^\/etc\/ferry\/agent\.yaml: control_plane\.endpoint: endpoint must be an http\(s\) URL$/m);
    expect(msg).toMatch(/^\/etc\/ferry\/agent\.yaml: poll_interval: /m);
    expect(msg).toMatch(/bogus/);
  });

  it('rejects a bad cron expression and ambiguous schedules', () => {
    expect(errorOf(() => parseAgentConfig(`${minimal}sync: {schedule: "every day"}\n`, 'f.yaml'))).toMatch(/^f\.yaml: sync\.schedule: not a valid cron/);
    expect(errorOf(() => parseAgentConfig(`${minimal}sync: {schedule: "0 * * * *", every_hours: 2}\n`, 'f.yaml'))).toMatch(/either sync\.schedule or sync\.every_hours/);
    expect(errorOf(() => parseAgentConfig(`${minimal}sync: {every_hours: 200}\n`, 'f.yaml'))).toMatch(/sync\.every_hours/);
  });

  it('rejects auth that mixes or lacks forms', () => {
    expect(errorOf(() => parseAgentConfig(`control_plane:\n  endpoint: https://x\n  auth: {}\n`, 'f.yaml'))).toMatch(/control_plane\.auth/);
    expect(errorOf(() => parseAgentConfig(`control_plane:\n  endpoint: https://x\n`, 'f.yaml'))).toMatch(/control_plane\.auth/);
  });

  it('does not echo secrets from a file it cannot parse', () => {
    const msg = errorOf(() => parseAgentConfig(`control_plane:\n  auth: {token: "tok-SECRET-2\n`, 'f.yaml'));
    expect(msg).toMatch(/^f\.yaml: not valid YAML/);
    expect(msg).not.toContain('tok-SECRET-2');
  });

  it('rejects a bad fingerprint in the receiver fallback', () => {
    expect(errorOf(() => parseAgentConfig(`${minimal}receiver: {fingerprint: "abc"}\n`, 'f.yaml'))).toMatch(/receiver\.fingerprint: must be a SHA-256/);
  });

  it('refuses a secret-holding file readable by group or others, and names the fix', async () => {
    const f = join(dir, 'agent.yaml');
    await writeFile(f, minimal);
    await chmod(f, 0o644);
    await expect(loadAgentConfig(f)).rejects.toThrow(/mode 644.*chmod 600/);
    await chmod(f, 0o640);
    await expect(loadAgentConfig(f)).rejects.toThrow(/mode 640/);
    await chmod(f, 0o600);
    await expect(loadAgentConfig(f)).resolves.toMatchObject({ poll_interval: 5 });
  });

  it('says clearly when the file is missing', async () => {
    const f = join(dir, 'missing.yaml');
    await expect(loadAgentConfig(f)).rejects.toThrow(/missing\.yaml: cannot read the config: no such file/);
  });

  it('has per-platform default paths', () => {
    expect(defaultConfigPath('linux')).toBe('/etc/ferry/agent.yaml');
    expect(defaultConfigPath('win32')).toMatch(/ferry.agent\.yaml$/);
  });
});
