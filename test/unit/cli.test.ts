// The CLI's outer contract: help lists commands, usage errors exit 2.
import { describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.js';

describe('ferry CLI', () => {
  it('prints help and exits 0', async () => {
    const r = await runFerry(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: ferry/);
  });

  it('prints its version', async () => {
    const r = await runFerry(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('exits 2 on an unknown command', async () => {
    const r = await runFerry(['no-such-command']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command|too many arguments/);
  });
});
