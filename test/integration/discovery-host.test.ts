// `ferry discover` on the machine the tests run on: a real child process
// whose body the POST /v3/sources schema accepts, including the fields the
// API makes mandatory for registering a Linux source.

import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { runFerry } from '../helpers/cli.js';
import { sourceRegistrationSchema } from '../../src/sms/schemas/source.js';

describe('ferry discover on this machine', () => {
  it('prints a body the registration schema accepts', async () => {
    const r = await runFerry(['discover']);
    expect(r.code, r.stderr).toBe(0);
    const parsed = sourceRegistrationSchema.safeParse(JSON.parse(r.stdout));
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    const body = parsed.data!;
    expect(body.os_type).toBe('LINUX');
    expect(body.hostname).toBe(hostname());
    expect(body.cpu_quantity).toBeGreaterThan(0);
    expect(body.networks!.some((n) => n.name === 'lo')).toBe(false);
    // loop devices stay out unless asked for
    expect(body.disks!.some((d) => d.name.startsWith('/dev/loop'))).toBe(false);
  });

  it('--json wraps the body with the warnings that also went to stderr; --pretty indents', async () => {
    const r = await runFerry(['discover', '--json', '--pretty']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith('{\n  "body": {')).toBe(true);
    const out = JSON.parse(r.stdout) as { body: unknown; warnings: string[] };
    for (const w of out.warnings) expect(r.stderr).toContain(w);
  });

  it('on a PATH without btrfs-progs or rsync: empty parts and warnings, no crash', async () => {
    // ferry also looks in /usr/sbin and /sbin (blkid, lvm, tc live there); btrfs and rsync live in /usr/bin.
    const r = await runFerry(['discover', '--json'], { env: { PATH: '/nonexistent' } });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { body: { btrfs_list: unknown[]; has_rsync: boolean }; warnings: string[] };
    expect(out.body.btrfs_list).toEqual([]);
    expect(out.body.has_rsync).toBe(false);
    expect(out.warnings.some((w) => /btrfs-progs/.test(w))).toBe(true);
    expect(r.stderr).toMatch(/warning: btrfs not installed/);
  });

  it('rejects an unknown flag with exit code 2', async () => {
    const r = await runFerry(['discover', '--no-such-flag']);
    expect(r.code).toBe(2);
  });
});
