// The service definitions: the shipped units are what `ferry service install`
// writes, pass `systemd-analyze verify`, score below 5 in
// `systemd-analyze security --offline=true`; install/uninstall work offline
// with --root; the WinSW XML is well-formed and quotes paths.
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec } from '../../../src/platform/exec.js';
import { renderAgentUnit, renderReceiverUnit, renderUnit } from '../../../src/platform/service-units.js';
import { installLinuxService, linuxServiceStatus, uninstallLinuxService } from '../../../src/platform/service-linux.js';
import { renderWinswXml, winQuote } from '../../../src/platform/service-windows.js';
import { needs } from '../../helpers/requirements.js';
import { runFerry } from '../../helpers/cli.js';

const shipped = (name: string) => readFileSync(new URL(`../../../systemd/${name}`, import.meta.url), 'utf8');

describe('systemd units', () => {
  it('ships exactly the rendered units', () => {
    expect(shipped('ferry-agent.service')).toBe(renderAgentUnit());
    expect(shipped('ferry-receiver.service')).toBe(renderReceiverUnit());
  });

  it('has the restart, kill and hardening settings, and explains what it leaves out', () => {
    const u = renderAgentUnit();
    for (const line of ['Restart=on-failure', 'KillMode=mixed', 'TimeoutStopSec=30s', 'StateDirectory=ferry', 'LogsDirectory=ferry', 'ProtectSystem=strict', 'NoNewPrivileges=yes']) {
      expect(u).toContain(`\n${line}\n`);
    }
    for (const left of ['PrivateDevices', 'MemoryDenyWriteExecute', 'ProcSubset=pid']) {
      expect(u).toMatch(new RegExp(`^# - ${left}.*\\n(#  .*\\n)+`, 'm'));
      expect(u).not.toMatch(new RegExp(`^${left}`, 'm'));
    }
  });

  it('keeps /etc/ferry at 0700, as packaging/install.sh and the .deb create it', () => {
    expect(renderAgentUnit()).toContain('\nConfigurationDirectoryMode=0700\n');
    expect(readFileSync(new URL('../../../packaging/install.sh', import.meta.url), 'utf8')).toContain('chmod 0700 "$etc"');
  });

  it('quotes an ExecStart path with spaces', () => {
    expect(renderUnit('agent', { exec: ['/opt/my ferry/ferry'], configPath: '/etc/ferry/a b.yaml' })).toContain(
      'ExecStart="/opt/my ferry/ferry" agent --config "/etc/ferry/a b.yaml"',
    );
  });

  const sa = needs({ tools: ['systemd-analyze'] });
  describe.runIf(sa.ok)('systemd-analyze (offline: systemd is not PID 1 here)', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ferry-units-'));
      // verify checks that ExecStart's program exists: point it at a stand-in.
      await writeFile(join(dir, 'ferry'), '#!/bin/sh\n');
      await chmod(join(dir, 'ferry'), 0o755);
      for (const name of ['agent', 'receiver'] as const) {
        await writeFile(join(dir, `ferry-${name}.service`), renderUnit(name, { exec: [join(dir, 'ferry')] }));
      }
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('verify passes with no warnings', async () => {
      const r = await exec('systemd-analyze', ['verify', join(dir, 'ferry-agent.service'), join(dir, 'ferry-receiver.service')], { timeoutMs: 60_000 });
      expect(r.stderr.trim()).toBe('');
    });

    it('security --offline=true scores the agent below 5', async () => {
      const r = await exec('systemd-analyze', ['security', '--offline=true', '--no-pager', join(dir, 'ferry-agent.service')], { timeoutMs: 60_000, okCodes: [0, 1] });
      const score = Number(r.stdout.match(/Overall exposure level for ferry-agent\.service: ([\d.]+)/)?.[1]);
      expect(score).toBeLessThan(5);
      const recv = await exec('systemd-analyze', ['security', '--offline=true', '--no-pager', join(dir, 'ferry-receiver.service')], { timeoutMs: 60_000, okCodes: [0, 1] });
      expect(Number(recv.stdout.match(/Overall exposure level for ferry-receiver\.service: ([\d.]+)/)?.[1])).toBeLessThan(5);
    });
  });

  const sc = needs({ tools: ['systemctl'] });
  describe.runIf(sc.ok)('install / uninstall with --root', () => {
    let root: string;
    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'ferry-root-'));
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it('writes the unit, enables it, reports it, and removes it again', async () => {
      const steps = await installLinuxService({ name: 'agent', exec: ['/usr/local/bin/ferry'], configPath: '/etc/ferry/agent.yaml', root });
      expect(steps.map((s) => s.action)).toEqual(['write', 'run']);
      const unit = join(root, 'etc/systemd/system/ferry-agent.service');
      expect(await readFile(unit, 'utf8')).toContain('ExecStart=/usr/local/bin/ferry agent --config /etc/ferry/agent.yaml');
      expect((await stat(unit)).mode & 0o777).toBe(0o644);
      await expect(lstat(join(root, 'etc/systemd/system/multi-user.target.wants/ferry-agent.service'))).resolves.toBeTruthy();
      expect(await linuxServiceStatus({ name: 'agent', exec: [], root })).toMatchObject({ installed: true, enabled: 'enabled' });
      await uninstallLinuxService({ name: 'agent', exec: [], root });
      await expect(stat(unit)).rejects.toThrow();
      await expect(lstat(join(root, 'etc/systemd/system/multi-user.target.wants/ferry-agent.service'))).rejects.toThrow();
      expect(await linuxServiceStatus({ name: 'agent', exec: [], root })).toMatchObject({ installed: false });
    });

    it('works from the command line: install, status, uninstall', async () => {
      const r = await mkdtemp(join(tmpdir(), 'ferry-root-cli-'));
      try {
        const inst = await runFerry(['service', 'install', '--root', r, '--exec', '/opt/ferry/ferry', '--config', '/etc/ferry/agent.yaml']);
        expect(inst.code, inst.stderr).toBe(0);
        expect(inst.stdout).toMatch(/^write .*ferry-agent\.service\nrun systemctl --root=.* enable ferry-agent\.service\n$/);
        const st = await runFerry(['service', 'status', '--root', r, '--json']);
        expect(JSON.parse(st.stdout)).toMatchObject({ installed: true, enabled: 'enabled' });
        expect((await runFerry(['service', 'uninstall', '--root', r])).code).toBe(0);
        expect((await runFerry(['service', 'status', '--root', r])).code).toBe(3);
        expect((await runFerry(['service', 'install', '--name', 'nope', '--root', r])).code).toBe(2);
      } finally {
        await rm(r, { recursive: true, force: true });
      }
    });

    it('--dry-run touches nothing and lists daemon-reload and enable --now', async () => {
      const steps = await installLinuxService({ name: 'receiver', exec: ['/usr/bin/ferry'], dryRun: true });
      expect(steps.map((s) => s.detail)).toEqual(['/etc/systemd/system/ferry-receiver.service', 'systemctl daemon-reload', 'systemctl enable --now ferry-receiver.service']);
    });
  });
});

// A packaged install runs ferry through bin/ferry (the launcher picks the
// node); `ferry service install` started through it must write a unit that
// runs the launcher, by the path it was started as, not node + bin.js.
describe('service install through the packaged launcher', () => {
  let tree: string;
  beforeAll(async () => {
    tree = await mkdtemp(join(tmpdir(), 'ferry-launcher-'));
    await mkdir(join(tree, 'opt/ferry/bin'), { recursive: true });
    await mkdir(join(tree, 'usr/bin'), { recursive: true });
    await copyFile(new URL('../../../packaging/ferry-launcher.sh', import.meta.url), join(tree, 'opt/ferry/bin/ferry'));
    await chmod(join(tree, 'opt/ferry/bin/ferry'), 0o755);
    await symlink(fileURLToPath(new URL('../../../dist', import.meta.url)), join(tree, 'opt/ferry/dist'));
    await symlink('../../opt/ferry/bin/ferry', join(tree, 'usr/bin/ferry'));
  });
  afterAll(async () => {
    await rm(tree, { recursive: true, force: true });
  });

  const run = (launcher: string, args: string[]) =>
    exec(launcher, args, { timeoutMs: 60_000, env: { ...process.env, FERRY_NODE: process.execPath, FERRY_LAUNCHER: '' } });

  it('--print and --dry-run name the launcher it was started as', async () => {
    const viaLink = join(tree, 'usr/bin/ferry');
    const unit = (await run(viaLink, ['service', 'install', '--print', '--config', '/etc/ferry/agent.yaml'])).stdout;
    expect(unit).toMatch(new RegExp(`^ExecStart=${viaLink} agent --config /etc/ferry/agent.yaml$`, 'm'));
    const recv = (await run(join(tree, 'opt/ferry/bin/ferry'), ['service', 'install', '--name', 'receiver', '--print'])).stdout;
    expect(recv).toMatch(new RegExp(`^ExecStart=${join(tree, 'opt/ferry/bin/ferry')} receive --data `, 'm'));
    const dry = await run(viaLink, ['service', 'install', '--dry-run', '--root', tree]);
    expect(dry.stdout).toContain(`would write ${join(tree, 'etc/systemd/system/ferry-agent.service')}`);
  });
});

// The launcher sets glibc's MALLOC_ARENA_MAX for every ferry it starts (a
// one-shot `ferry migrate` as much as the agent's unit), unless the operator
// set it. Seen by a stand-in node that reports its environment.
describe("the launcher's environment for node", () => {
  let tree: string;
  beforeAll(async () => {
    tree = await mkdtemp(join(tmpdir(), 'ferry-launcher-env-'));
    await mkdir(join(tree, 'bin'), { recursive: true });
    await copyFile(new URL('../../../packaging/ferry-launcher.sh', import.meta.url), join(tree, 'bin/ferry'));
    await chmod(join(tree, 'bin/ferry'), 0o755);
    const fake = join(tree, 'fake-node');
    await writeFile(fake, '#!/bin/sh\n[ "$1" = --version ] && { echo v20.19.0; exit 0; }\necho "arena=${MALLOC_ARENA_MAX-unset} args=$*"\n');
    await chmod(fake, 0o755);
  });
  afterAll(async () => {
    await rm(tree, { recursive: true, force: true });
  });
  const env = (extra: Record<string, string>) => {
    const e: Record<string, string | undefined> = { ...process.env, FERRY_NODE: join(tree, 'fake-node'), FERRY_LAUNCHER: '', ...extra };
    if (!('MALLOC_ARENA_MAX' in extra)) delete e.MALLOC_ARENA_MAX;
    return e as NodeJS.ProcessEnv;
  };

  it("gives node two malloc arenas by default and keeps an operator's own value", async () => {
    const dflt = await exec(join(tree, 'bin/ferry'), ['migrate', '--help'], { timeoutMs: 10_000, env: env({}) });
    expect(dflt.stdout.trim()).toBe(`arena=2 args=--max-semi-space-size=4 ${join(tree, 'dist/cli/bin.js')} migrate --help`);
    const own = await exec(join(tree, 'bin/ferry'), ['receive'], { timeoutMs: 10_000, env: env({ MALLOC_ARENA_MAX: '4' }) });
    expect(own.stdout.trim()).toBe(`arena=4 args=--max-semi-space-size=4 ${join(tree, 'dist/cli/bin.js')} receive`);
  });

  it('gives the real node a young generation of 4 MB semi-spaces (V8 takes the flag: its new space is that size)', async () => {
    // The launcher runs `node` from PATH here (no runtime/ beside it): the node running these tests.
    await mkdir(join(tree, 'dist/cli'), { recursive: true });
    // Short-lived objects, some kept a while: V8 grows the semi-spaces as far as it may (to 2 x 16 MB without the flag).
    const script = [
      "const v8 = require('node:v8');",
      'const keep = [];',
      "for (let r = 0; r < 200; r++) { const a = []; for (let i = 0; i < 20000; i++) a.push({ i, s: 'x' + i }); keep.push(a); if (keep.length > 20) keep.shift(); }",
      "const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');",
      "console.log(process.execArgv.join(' '), s.space_size);",
    ];
    await writeFile(join(tree, 'dist/cli/bin.js'), `${script.join('\n')}\n`);
    const e = env({});
    delete e.FERRY_NODE;
    e.PATH = `${dirname(process.execPath)}:${e.PATH ?? ''}`;
    const r = await exec(join(tree, 'bin/ferry'), [], { timeoutMs: 10_000, env: e });
    const [flags, size] = r.stdout.trim().split(/ (?=\d+$)/);
    expect(flags).toBe('--max-semi-space-size=4');
    // Two semi-spaces of at most 4 MB (measured: 8.4 MB with the flag, 33.6 MB without).
    expect(Number(size)).toBeLessThanOrEqual(2 * 4 * 1024 * 1024 + 512 * 1024);
  });
});

describe('WinSW configuration', () => {
  const xml = renderWinswXml({
    name: 'agent',
    executable: 'C:\\Program Files\\ferry\\node.exe',
    prefixArgs: ['C:\\Program Files\\ferry\\dist\\cli\\bin.js'],
    configPath: 'C:\\ProgramData\\ferry\\agent & co.yaml',
  });

  it('runs the agent with its config, restarts on failure, stops with a timeout', () => {
    expect(xml).toContain('<id>ferry-agent</id>');
    expect(xml).toContain('<executable>C:\\Program Files\\ferry\\node.exe</executable>');
    expect(xml).toContain('<arguments>&quot;C:\\Program Files\\ferry\\dist\\cli\\bin.js&quot; agent --config &quot;C:\\ProgramData\\ferry\\agent &amp; co.yaml&quot;</arguments>');
    expect(xml).toContain('<onfailure action="restart" delay="5 sec"/>');
    expect(xml).toContain('<stoptimeout>30 sec</stoptimeout>');
    expect(xml).toContain('<startmode>Automatic</startmode>');
  });

  it('is well-formed XML (balanced elements, no raw ampersands)', () => {
    const body = xml.replace(/<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '');
    const stack: string[] = [];
    for (const m of body.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
      if (m[3]) continue;
      if (m[1]) expect(stack.pop()).toBe(m[2]);
      else stack.push(m[2]!);
    }
    expect(stack).toEqual([]);
    expect(body).not.toMatch(/&(?!amp;|lt;|gt;|quot;|apos;)/);
  });

  it('is printed by `ferry service install --platform windows --print`', async () => {
    const r = await runFerry(['service', 'install', '--platform', 'windows', '--print', '--exec', 'C:\\ferry\\ferry.exe', '--config', 'C:\\ProgramData\\ferry\\agent.yaml']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('<executable>C:\\ferry\\ferry.exe</executable>');
    expect(r.stdout).toContain('<arguments>agent --config C:\\ProgramData\\ferry\\agent.yaml</arguments>');
  });

  it('quotes Windows arguments like CommandLineToArgvW expects', () => {
    expect(winQuote('plain')).toBe('plain');
    expect(winQuote('a b')).toBe('"a b"');
    expect(winQuote('C:\\dir with space\\')).toBe('"C:\\dir with space\\\\"');
    expect(winQuote('say "hi"')).toBe('"say \\"hi\\""');
  });
});
