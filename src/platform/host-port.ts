// HOST:PORT on the command line. A listening address may leave the host out
// (`:7443` listens on every interface); an address to connect to may not:
// there is no sensible host to guess for a receiver on another machine.
// IPv6 literals go in brackets (`[fd00::5]:7443`).

import { UsageError } from '../errors/ferry-error.js';

/**
 * Parses `HOST:PORT` given to `flag`. Without `defaultHost` the host is
 * required (an address to connect to); with it, `:PORT` means that host.
 */
export function parseHostPort(s: string, flag: string, defaultHost?: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${flag} wants HOST:PORT, got '${s}'`);
  const host = m[1] || defaultHost;
  if (!host) throw new UsageError(`${flag} wants HOST:PORT with a host to connect to, got '${s}' (for example 10.0.0.5:${m[2]})`);
  return { host, port: Number(m[2]) };
}
