// The control-plane proxy from the environment: which variable counts for
// which endpoint, NO_PROXY's forms, loopback always direct, a configured
// proxy or a pinned fingerprint winning over the environment.
import { describe, expect, it } from 'vitest';
import { noProxyMatches, proxyFromEnv } from '../../../src/sms-client/proxy-env.js';
import { clientOptions } from '../../../src/agent/sms-port.js';
import { parseAgentConfig } from '../../../src/config/agent-config.js';

const SMS = 'https://sms.ap-southeast-1.myhuaweicloud.com';

describe('proxy from the environment', () => {
  it('takes https_proxy, then HTTPS_PROXY, for https endpoints; only lower-case http_proxy for http ones', () => {
    expect(proxyFromEnv(SMS, {})).toBeUndefined();
    expect(proxyFromEnv(SMS, { HTTPS_PROXY: 'http://proxy.corp:3128' })).toBe('http://proxy.corp:3128/');
    expect(proxyFromEnv(SMS, { https_proxy: 'http://a:1', HTTPS_PROXY: 'http://b:2' })).toBe('http://a:1/');
    expect(proxyFromEnv(SMS, { HTTPS_PROXY: 'proxy.corp:3128' })).toBe('http://proxy.corp:3128/');
    expect(proxyFromEnv(SMS, { http_proxy: 'http://p:1' })).toBeUndefined();
    expect(proxyFromEnv('http://cp.corp:8080', { HTTP_PROXY: 'http://p:1' })).toBeUndefined();
    expect(proxyFromEnv('http://cp.corp:8080', { http_proxy: 'http://p:1' })).toBe('http://p:1/');
    expect(proxyFromEnv(SMS, { HTTPS_PROXY: '   ' })).toBeUndefined();
  });

  it('never proxies loopback endpoints', () => {
    const e = { HTTPS_PROXY: 'http://proxy.corp:3128', http_proxy: 'http://proxy.corp:3128' };
    for (const ep of ['https://127.0.0.1:8443', 'https://localhost:8443', 'https://[::1]:8443', 'http://127.1.2.3', 'https://cp.localhost']) {
      expect(proxyFromEnv(ep, e)).toBeUndefined();
    }
  });

  it('honours NO_PROXY: names and subdomains, leading dots, ports, IPs, CIDR blocks, *', () => {
    const cases: [list: string, host: string, port: string, exempt: boolean][] = [
      ['myhuaweicloud.com', 'sms.ap-southeast-1.myhuaweicloud.com', '443', true],
      ['.myhuaweicloud.com', 'sms.ap-southeast-1.myhuaweicloud.com', '443', true],
      ['*.myhuaweicloud.com', 'sms.ap-southeast-1.myhuaweicloud.com', '443', true],
      ['huaweicloud.com', 'sms.myhuaweicloud.com', '443', false],
      ['other.org, cp.corp:8443', 'cp.corp', '8443', true],
      ['cp.corp:8443', 'cp.corp', '443', false],
      ['10.0.0.0/8', '10.20.30.40', '443', true],
      ['10.0.0.0/8', '11.0.0.1', '443', false],
      ['192.168.1.5', '192.168.1.5', '443', true],
      ['fd00::/8', 'fd12::1', '443', true],
      ['*', 'anything.example', '1', true],
      ['', 'anything.example', '1', false],
    ];
    for (const [list, host, port, exempt] of cases) expect(noProxyMatches(list, host, port), `${list} ~ ${host}:${port}`).toBe(exempt);
    expect(proxyFromEnv(SMS, { HTTPS_PROXY: 'http://p:1', NO_PROXY: '.myhuaweicloud.com' })).toBeUndefined();
    expect(proxyFromEnv(SMS, { HTTPS_PROXY: 'http://p:1', no_proxy: 'example.org' })).toBe('http://p:1/');
  });

  it('refuses a proxy that is not an http(s) URL, without echoing the value', () => {
    expect(() => proxyFromEnv(SMS, { HTTPS_PROXY: 'socks5://user:secret@p:1080' })).toThrow(/must be an http\(s\) URL, not socks5:/);
    try {
      proxyFromEnv(SMS, { HTTPS_PROXY: 'http://user:s3cret@[bad' });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('s3cret');
    }
  });

  it('is what the agent uses when its config names no proxy; a configured proxy or a pinned fingerprint wins', async () => {
    const config = (cp: Record<string, unknown>) =>
      parseAgentConfig(JSON.stringify({ control_plane: { endpoint: SMS, auth: { token: 't' }, ...cp }, data_dir: '/tmp/x' }), 'a.json');
    const env = { HTTPS_PROXY: 'http://proxy.corp:3128' };
    expect((await clientOptions(config({}), env)).proxy).toBe('http://proxy.corp:3128/');
    expect((await clientOptions(config({ proxy: 'http://mine:8080' }), env)).proxy).toBe('http://mine:8080');
    expect((await clientOptions(config({ fingerprint: 'ab'.repeat(32) }), env)).proxy).toBeUndefined();
    expect((await clientOptions(config({}), {})).proxy).toBeUndefined();
  });
});
