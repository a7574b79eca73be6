// HOST:PORT on the command line: a listening address may leave the host out,
// the receiver `ferry migrate --to` connects to may not (there is nothing to
// guess it from), and says so before anything is read or sent.

import { describe, expect, it } from 'vitest';
import { parseHostPort } from '../../../src/platform/host-port.js';
import { runFerry } from '../../helpers/cli.js';

describe('parseHostPort', () => {
  it('reads a host name, an IPv4 address or a bracketed IPv6 address and a port', () => {
    expect(parseHostPort('10.0.0.5:7443', '--to')).toEqual({ host: '10.0.0.5', port: 7443 });
    expect(parseHostPort('receiver.lab:7000', '--to')).toEqual({ host: 'receiver.lab', port: 7000 });
    expect(parseHostPort('[fd00::5]:7443', '--to')).toEqual({ host: 'fd00::5', port: 7443 });
  });

  it('gives a listening address without a host the default host', () => {
    expect(parseHostPort(':7443', '--listen', '0.0.0.0')).toEqual({ host: '0.0.0.0', port: 7443 });
  });

  it('refuses an address to connect to without a host, naming the flag and an example', () => {
    expect(() => parseHostPort(':7443', '--to')).toThrow("--to wants HOST:PORT with a host to connect to, got ':7443' (for example 10.0.0.5:7443)");
    expect(() => parseHostPort(':7443', '--to')).toThrow(expect.objectContaining({ code: 'FERRY_USAGE' }));
  });

  it('refuses what is not HOST:PORT', () => {
    for (const bad of ['10.0.0.5', '10.0.0.5:', '10.0.0.5:port', '10.0.0.5:70000']) {
      expect(() => parseHostPort(bad, '--to')).toThrow(`--to wants HOST:PORT, got '${bad}'`);
    }
  });
});

describe('ferry migrate --to', () => {
  it('exits 2 with a usage error when the receiver address has no host', async () => {
    const r = await runFerry(['migrate', '--to', ':7443', '--token', 't', '--fingerprint', 'aa'.repeat(32), '--block', '/dev/null=disk0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--to wants HOST:PORT with a host to connect to, got ':7443'");
  });
});
