// The proxy for a control-plane endpoint from the environment, read the way
// curl and Go read it: `https_proxy`/`HTTPS_PROXY` for https endpoints,
// `http_proxy` (lower case only: a CGI request can set HTTP_PROXY) for
// http ones, `no_proxy`/`NO_PROXY` for the exceptions, and loopback hosts
// always direct. Used when the configuration names no proxy itself.

import { BlockList, isIP } from 'node:net';
import { FerryError } from '../errors/ferry-error.js';

function env(e: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = e[n]?.trim();
    if (v) return v;
  }
  return undefined;
}

function bare(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function isLoopback(host: string): boolean {
  const h = bare(host).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

/** True when a NO_PROXY list exempts host:port (`*`, names and their subdomains, IPs, CIDR blocks, optional :port). */
export function noProxyMatches(list: string, host: string, port: string): boolean {
  const h = bare(host).toLowerCase();
  for (const raw of list.split(/[\s,]+/)) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    let entryPort = '';
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
    if (m && isIP(entry) !== 6) {
      entry = m[1]!;
      entryPort = m[2]!;
    }
    entry = bare(entry);
    if (entryPort && entryPort !== port) continue;
    if (entry.includes('/')) {
      const [net, bits] = entry.split('/');
      const family = isIP(net!);
      if (family && isIP(h) === family) {
        const block = new BlockList();
        try {
          block.addSubnet(net!, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
        } catch {
          continue;
        }
        if (block.check(h, family === 4 ? 'ipv4' : 'ipv6')) return true;
      }
      continue;
    }
    const name = entry.startsWith('.') ? entry.slice(1) : entry.startsWith('*.') ? entry.slice(2) : entry;
    if (h === name || h.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** The proxy URL to use for `endpoint`, or undefined for a direct connection. */
export function proxyFromEnv(endpoint: string, e: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = new URL(endpoint);
  const proxy = url.protocol === 'https:' ? env(e, 'https_proxy', 'HTTPS_PROXY') : env(e, 'http_proxy');
  if (!proxy) return undefined;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  if (isLoopback(url.hostname)) return undefined;
  const exempt = env(e, 'no_proxy', 'NO_PROXY');
  if (exempt && noProxyMatches(exempt, url.hostname, port)) return undefined;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new FerryError('FERRY_CONFIG', `the ${url.protocol === 'https:' ? 'HTTPS_PROXY' : 'http_proxy'} environment variable is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new FerryError('FERRY_CONFIG', `the proxy from the environment must be an http(s) URL, not ${parsed.protocol}`);
  }
  return parsed.href;
}
