// The shipped receiver unit starts a receiver that works: its ExecStart,
// expanded the way systemd expands it (Environment= defaults, then the
// EnvironmentFile's values; ${VAR} is one argument, $VAR splits on spaces),
// with packaging/receiver.sample.env's values, runs through the real CLI
// until the receiver listens. Only the port (0) and the state directory
// (a temp dir, which systemd's StateDirectory= would create) are swapped.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnFerry, waitForLine } from '../../helpers/cli.js';

const read = (rel: string) => readFileSync(new URL(`../../../${rel}`, import.meta.url), 'utf8');

/** KEY=VALUE lines (EnvironmentFile= syntax: comments, optional double quotes). */
function parseEnv(lines: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`bad env line: ${line}`);
    env[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return env;
}

/** systemd's ExecStart= expansion for the unquoted words the unit uses. */
function expandExecStart(line: string, env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const word of line.split(/\s+/).filter(Boolean)) {
    const braced = /^\$\{(\w+)\}$/.exec(word);
    const bare = /^\$(\w+)$/.exec(word);
    if (braced) out.push(env[braced[1]!] ?? '');
    else if (bare) out.push(...(env[bare[1]!] ?? '').split(/\s+/).filter(Boolean));
    else out.push(word);
  }
  return out;
}

describe('ferry-receiver.service', () => {
  const unit = read('systemd/ferry-receiver.service');
  const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!;
  const defaults = parseEnv([...unit.matchAll(/^Environment=(.*)$/gm)].map((m) => m[1]!));
  const sample = parseEnv(read('packaging/receiver.sample.env').split('\n'));

  it('reads the sample env file from the path the unit names', () => {
    expect(unit).toContain('\nEnvironmentFile=-/etc/ferry/receiver.env\n');
    expect(Object.keys(sample).sort()).toEqual(['FERRY_RECEIVER_ARGS', 'FERRY_RECEIVER_LISTEN']);
  });

  for (const [label, fileEnv] of [
    ['with the sample receiver.env', sample],
    ['without receiver.env (unit defaults only)', {}],
  ] as const) {
    it(`runs its ExecStart ${label} until the receiver listens`, async () => {
      const env = { ...defaults, ...fileEnv };
      expect(env.FERRY_RECEIVER_LISTEN).toMatch(/:\d+$/);
      env.FERRY_RECEIVER_LISTEN = env.FERRY_RECEIVER_LISTEN!.replace(/^.*:\d+$/, '127.0.0.1:0');
      const argv = expandExecStart(execStart, env);
      expect(argv[0]).toBe('/usr/bin/ferry');
      const dataAt = argv.indexOf('/var/lib/ferry-receiver');
      expect(dataAt).toBeGreaterThan(0);
      const data = await mkdtemp(join(tmpdir(), 'ferry-rx-unit-'));
      argv[dataAt] = data;
      const child = spawnFerry(argv.slice(1));
      try {
        const m = await waitForLine(child, /^ferry receiver listening on 127\.0\.0\.1:(\d+) fingerprint=\S+ token=\S+$/);
        expect(Number(m[1])).toBeGreaterThan(0);
        const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        child.kill('SIGKILL');
        await rm(data, { recursive: true, force: true });
      }
    });
  }
});
