// The tools ferry runs get the host's environment, never what the packaged
// runtime set for ferry itself (FERRY_LAUNCHER, FERRY_RUNTIME_*): a real
// child process prints what it received. And ferry starts itself again
// through its launcher, never through process.execPath alone (under the
// bundled loader that is the loader).

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exec } from '../../../src/platform/exec.js';
import { adoptLauncher, ferryLauncher, selfCommand } from '../../../src/platform/self-command.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-toolenv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function envOf(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe('a host tool run through exec', () => {
  it('sees none of the bundle variables, whether the caller passes an environment or not', async () => {
    const bundle = { FERRY_LAUNCHER: '/opt/ferry/bin/ferry', FERRY_RUNTIME_DIR: '/opt/ferry/runtime' };
    const passed = envOf((await exec('env', [], { env: { ...bundle, PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: '/host/own', KEEP: 'me' } })).stdout);
    expect(passed).toEqual({ PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: '/host/own', KEEP: 'me' });

    Object.assign(process.env, bundle);
    try {
      const inherited = envOf((await exec('env', [])).stdout);
      expect(Object.keys(inherited).filter((k) => k.startsWith('FERRY_LAUNCHER') || k.startsWith('FERRY_RUNTIME'))).toEqual([]);
      expect(inherited.LC_ALL).toBe('C');
    } finally {
      delete process.env.FERRY_LAUNCHER;
      delete process.env.FERRY_RUNTIME_DIR;
    }
  });
});

describe('how ferry starts itself again', () => {
  it('without a launcher: node and the script when it exists, else the executable alone (single executable)', () => {
    const script = join(dir, 'bin.js');
    writeFileSync(script, '');
    expect(selfCommand(script, [])).toEqual([process.execPath, script]);
    expect(selfCommand(join(dir, 'missing/bin.js'), [])).toEqual([process.execPath]);
    expect(selfCommand(undefined, [])).toEqual([process.execPath]);
  });

  it("keeps node's heap-size flags (the launcher's --max-semi-space-size), not the rest of node's flags", () => {
    const script = join(dir, 'bin.js');
    writeFileSync(script, '');
    const argv = ['--cpu-prof', '--max-semi-space-size=4', '--inspect=0', '--max-old-space-size=512', '--max-semi-space-size'];
    expect(selfCommand(script, argv)).toEqual([process.execPath, '--max-semi-space-size=4', '--max-old-space-size=512', script]);
    expect(selfCommand(undefined, argv)).toEqual([process.execPath]);
  });

  it('through the launcher it was started by, which leaves the environment when adopted', () => {
    const launcher = join(dir, 'ferry');
    writeFileSync(launcher, '#!/bin/sh\n');
    chmodSync(launcher, 0o755);
    const env: NodeJS.ProcessEnv = { FERRY_LAUNCHER: launcher, OTHER: 'x' };
    adoptLauncher(env);
    expect(env).toEqual({ OTHER: 'x' });
    expect(ferryLauncher()).toBe(launcher);
    expect(selfCommand(join(dir, 'bin.js'))).toEqual([launcher]);
  });
});
