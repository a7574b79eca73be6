// `ferry discover` on the machine the tests run on: a real child process
// whose body the POST /v3/sources schema accepts, including the fields the
// API makes mandatory for registering a Linux source.

import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { runFerry } from '../helpers/cli.js';
import { sourceRegistrationSchema } from '../../src/controlplane/schemas/source.js';

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

  it('on a PATH without blkid, LVM or btrfs-progs: empty parts and warnings, no crash', async () => {
    const r = await runFerry(['discover', '--json'], { env: { PATH: '/nonexistent' } });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { body: { volume_groups: unknown[]; btrfs_list: unknown[] }; warnings: string[] };
    expect(out.body.volume_groups).toEqual([]);
    expect(out.body.btrfs_list).toEqual([]);
    expect(out.warnings.some((w) => /pvs: not installed/.test(w))).toBe(true);
    expect(out.warnings.some((w) => /btrfs-progs/.test(w))).toBe(true);
    expect(r.stderr).toMatch(/warning: .*volume_groups left empty/);
  });

  it('rejects an unknown flag with exit code 2', async () => {
    const r = await runFerry(['discover', '--no-such-flag']);
    expect(r.code).toBe(2);
  });
});
