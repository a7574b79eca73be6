// Release artefacts, built for real by packaging/build.sh (the `npm run
// package` script) from the current dist/ (`npm run build` first): the
// linux-x64 tarball (with its runtime/: node, its libraries and loader) is
// installed with its install.sh below a temporary --root, run from there and
// removed again; the .deb is inspected with dpkg-deb and installed and purged
// with dpkg into a temporary instdir and admindir (maintainer scripts run
// chrootless with DPKG_ROOT set); the .rpm is inspected with rpm -qp; the
// Windows zip is listed. Nothing touches the real system. Running the Linux
// artefacts without the host's C library: packaging-oldlinux.test.ts.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../helpers/requirements.js';

const run = promisify(execFile);
const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const TARBALL = `ferry-${VERSION}-linux-x64.tar.gz`;
const DEB = `ferry_${VERSION}_amd64.deb`;
const ZIP = `ferry-${VERSION}-win-x64.zip`;
const RPM = `ferry-${VERSION}-1.x86_64.rpm`;

const env = needs({ tools: ['bash', 'tar', 'npm', 'dpkg-deb', 'dpkg', 'rpmbuild', 'rpm', 'zip', 'unzip', 'lintian'] });

/** Every regular file and symlink below dir (what an uninstall must not leave). */
function leftovers(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else found.push(p.slice(dir.length));
    }
  };
  walk(dir);
  return found;
}

function mode(path: string): string {
  return (statSync(path).mode & 0o7777).toString(8);
}

describe.runIf(env.ok)('release packaging', () => {
  let dir: string;
  let out: string;

  beforeAll(async () => {
    if (!existsSync(join(REPO, 'dist/cli/bin.js'))) throw new Error('dist/ is missing: run npm run build first');
    dir = mkdtempSync(join(tmpdir(), 'ferry-packaging-'));
    out = join(dir, 'out');
    await run('bash', [join(REPO, 'packaging/build.sh'), '--skip-build', '--fast', '--no-sea', '--out', out], { cwd: REPO, timeout: 200_000 });
  }, 240_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('SHA256SUMS lists every artefact written and matches them', async () => {
    const sums = readFileSync(join(out, 'SHA256SUMS'), 'utf8');
    expect(sums.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[1]).sort()).toEqual([TARBALL, ZIP, DEB, RPM].sort());
    await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
  });

  it('the tarball holds the app, production dependencies with the linux-x64-gnu addons, units and installer, and no dev tools', async () => {
    const { stdout } = await run('tar', ['-tzvf', join(out, TARBALL)], { maxBuffer: 64 * 1024 * 1024 });
    const top = `ferry-${VERSION}-linux-x64/`;
    const names = stdout.split('\n').filter(Boolean).map((l) => l.slice(l.indexOf(top)));
    for (const want of [
      'bin/ferry',
      'install.sh',
      'agent.sample.yaml',
      'package.json',
      'dist/cli/bin.js',
      'systemd/ferry-agent.service',
      'systemd/ferry-receiver.service',
      'node_modules/lz4-napi/index.js',
      'node_modules/@antoniomuso/lz4-napi-linux-x64-gnu/lz4-napi.linux-x64-gnu.node',
      'node_modules/@napi-rs/xattr-linux-x64-gnu/xattr.linux-x64-gnu.node',
      // ferry's own native lister (packaging/build-native.mjs).
      'dist/native/ferry-fs.node',
      'node_modules/xxhash-wasm/package.json',
      // The LZ4 codec's WebAssembly module, read by dist/protocol/lz4-wasm-bytes.js.
      'node_modules/lz4-wasm-nodejs/lz4_wasm_nodejs_bg.wasm',
      // The runtime bin/ferry starts: node, its C/C++ libraries and their loader.
      'runtime/node',
      'runtime/ld-linux-x86-64.so.2',
      'runtime/lib/libc.so.6',
      'runtime/lib/libm.so.6',
      'runtime/lib/libstdc++.so.6',
      'runtime/lib/libgcc_s.so.1',
      'runtime/SOURCES',
      'runtime/licenses/libc6.copyright',
    ]) {
      expect(names, want).toContain(top + want);
    }
    expect(names.filter((n) => /\/node_modules\/(vitest|typescript|@types)\//.test(n))).toEqual([]);
    expect(names.filter((n) => n.startsWith(`${top}dist/`) && n.endsWith('.map'))).toEqual([]);
    // Owned by root whoever built it; the launcher and installer are executable.
    expect(stdout).not.toMatch(/^\S+ (?!0\/0 )/m);
    expect(stdout).toMatch(new RegExp(`^-rwxr-xr-x 0/0 .* ${top}bin/ferry$`, 'm'));
  });

  it('install.sh installs below --root, the installed ferry runs, an upgrade keeps the config, uninstall --purge leaves nothing', async () => {
    const root = join(dir, 'root');
    mkdirSync(root);
    const install = await run('sh', [join(REPO, 'packaging/install.sh'), '--root', root, join(out, TARBALL)]);
    expect(install.stdout).toContain(`installed ${VERSION} in /opt/ferry`);

    const ferry = join(root, 'opt/ferry/bin/ferry');
    expect(readlinkSync(join(root, 'usr/local/bin/ferry'))).toBe('/opt/ferry/bin/ferry');
    expect(mode(join(root, 'etc/ferry'))).toBe('700');
    expect(mode(join(root, 'etc/ferry/agent.yaml'))).toBe('600');
    expect(readFileSync(join(root, 'etc/ferry/agent.yaml'), 'utf8')).toBe(readFileSync(join(REPO, 'packaging/agent.sample.yaml'), 'utf8'));
    const agentUnit = readFileSync(join(root, 'etc/systemd/system/ferry-agent.service'), 'utf8');
    expect(agentUnit).toMatch(/^ExecStart=\/usr\/local\/bin\/ferry agent --config \/etc\/ferry\/agent.yaml$/m);
    expect(readFileSync(join(root, 'etc/systemd/system/ferry-receiver.service'), 'utf8')).toMatch(/^ExecStart=\/usr\/local\/bin\/ferry receive /m);

    // The installed tree runs on its own: version, discovery, and the native
    // lz4 addon and the wasm hasher load from its node_modules.
    expect((await run(ferry, ['--version'])).stdout.trim()).toBe(VERSION);
    const discovered = JSON.parse((await run(ferry, ['discover'], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 })).stdout) as Record<string, unknown>;
    expect(discovered.os_type).toBe('LINUX');
    const probe = `
      const { compress, uncompress } = require('lz4-napi');
      const xxhash = require('xxhash-wasm');
      (async () => {
        const input = Buffer.alloc(1 << 20, 'ferry');
        const back = await uncompress(await compress(input));
        const { h64Raw } = await xxhash();
        process.stdout.write(JSON.stringify({ same: back.equals(input), h: h64Raw(input).toString(16) }));
      })();`;
    const addon = JSON.parse((await run(process.execPath, ['-e', probe], { cwd: join(root, 'opt/ferry') })).stdout) as { same: boolean; h: string };
    expect(addon.same).toBe(true);
    expect(addon.h).toMatch(/^[0-9a-f]+$/);
    // ferry's LZ4 codec finds its WebAssembly module in the installed tree (else it would fall back and warn).
    const wasmProbe = `import(${JSON.stringify(pathToFileURL(join(root, 'opt/ferry/dist/protocol/lz4-wasm.js')).href)}).then((m) => process.stdout.write(String(m.wasmCodec() !== null)))`;
    const wasm = await run(process.execPath, ['-e', wasmProbe]);
    expect(wasm.stdout).toBe('true');
    expect(wasm.stderr).not.toMatch(/FERRY_LZ4_WASM/);

    // The launcher refuses a Node older than 20.19 with a message that says so.
    const oldNode = join(dir, 'node18');
    writeFileSync(oldNode, '#!/bin/sh\necho v18.19.1\n');
    chmodSync(oldNode, 0o755);
    const refused = await run(ferry, ['--version'], { env: { ...process.env, FERRY_NODE: oldNode } }).catch((e: { code: number; stderr: string }) => e);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toContain('Node.js >= 20.19 is required; ' + oldNode + ' is v18.19.1');

    // Upgrade from the extracted tree's own install.sh: the edited config stays.
    writeFileSync(join(root, 'etc/ferry/agent.yaml'), 'data_dir: /srv/ferry\n', { mode: 0o600 });
    const extracted = join(dir, 'extracted');
    mkdirSync(extracted);
    await run('tar', ['-xzf', join(out, TARBALL), '-C', extracted]);
    await run('sh', [join(extracted, `ferry-${VERSION}-linux-x64/install.sh`), `--root=${root}`]);
    expect(readFileSync(join(root, 'etc/ferry/agent.yaml'), 'utf8')).toBe('data_dir: /srv/ferry\n');
    expect((await run(ferry, ['--version'])).stdout.trim()).toBe(VERSION);
    expect(existsSync(join(root, 'opt/ferry.old'))).toBe(false);
    expect(existsSync(join(root, 'opt/ferry.new'))).toBe(false);

    // Uninstall keeps config and state; --purge removes them too.
    mkdirSync(join(root, 'var/lib/ferry'), { recursive: true });
    writeFileSync(join(root, 'var/lib/ferry/state.json'), '{}');
    await run('sh', [join(root, 'opt/ferry/install.sh'), '--root', root, '--uninstall']);
    expect(leftovers(root).sort()).toEqual(['/etc/ferry/agent.yaml', '/var/lib/ferry/state.json']);
    await run('sh', [join(REPO, 'packaging/install.sh'), '--root', root, '--uninstall', '--purge']);
    expect(leftovers(root)).toEqual([]);
  });

  it('install.sh refuses to install into / without root and rejects unknown options', async () => {
    const bad = await run('sh', [join(REPO, 'packaging/install.sh'), '--frobnicate']).catch((e: { code: number; stderr: string }) => e);
    expect(bad).toMatchObject({ code: 1 });
    expect((bad as { stderr: string }).stderr).toContain('unknown option --frobnicate');
    const purgeAlone = await run('sh', [join(REPO, 'packaging/install.sh'), '--root', dir, '--purge']).catch((e: { code: number; stderr: string }) => e);
    expect((purgeAlone as { stderr: string }).stderr).toContain('--purge goes with --uninstall');
  });

  it('the .deb declares its dependency and conffile, ships private config and the units, installs and purges cleanly', async () => {
    const deb = join(out, DEB);
    const info = (await run('dpkg-deb', ['--info', deb])).stdout;
    expect(info).toMatch(/^ Package: ferry$/m);
    expect(info).toMatch(new RegExp(`^ Version: ${VERSION.replace(/\./g, '\\.')}$`, 'm'));
    expect(info).toMatch(/^ Architecture: amd64$/m);
    // It carries its own runtime: no dependency on the host's libc6 or nodejs.
    expect(info).not.toMatch(/^ (Pre-)?Depends:/m);
    expect((await run('dpkg-deb', ['--field', deb, 'Installed-Size'])).stdout.trim()).toMatch(/^\d+$/);
    const ctl = join(dir, 'control');
    await run('dpkg-deb', ['--control', deb, ctl]);
    expect(readFileSync(join(ctl, 'conffiles'), 'utf8').trim()).toBe('/etc/ferry/agent.yaml');
    for (const s of ['postinst', 'prerm', 'postrm']) await run('sh', ['-n', join(ctl, s)]);

    const contents = (await run('dpkg-deb', ['--contents', deb], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    expect(contents).toMatch(/^drwx------ root\/root .* \.\/etc\/ferry\/$/m);
    expect(contents).toMatch(/^-rw------- root\/root .* \.\/etc\/ferry\/agent\.yaml$/m);
    expect(contents).toMatch(/^lrwxrwxrwx root\/root .* \.\/usr\/bin\/ferry -> \.\.\/lib\/ferry\/bin\/ferry$/m);
    expect(contents).toMatch(/^-rwxr-xr-x root\/root .* \.\/usr\/lib\/ferry\/bin\/ferry$/m);
    expect(contents).toMatch(/ \.\/lib\/systemd\/system\/ferry-agent\.service$/m);
    expect(contents).toMatch(/ \.\/lib\/systemd\/system\/ferry-receiver\.service$/m);
    expect(contents).toMatch(/ \.\/usr\/lib\/ferry\/node_modules\/@antoniomuso\/lz4-napi-linux-x64-gnu\/lz4-napi\.linux-x64-gnu\.node$/m);
    expect(contents).toMatch(/^-rwxr-xr-x root\/root .* \.\/usr\/lib\/ferry\/runtime\/ld-linux-x86-64\.so\.2$/m);
    expect(contents).toMatch(/ \.\/usr\/lib\/ferry\/runtime\/lib\/libc\.so\.6$/m);
    expect(contents).toMatch(/ \.\/usr\/share\/doc\/ferry\/copyright$/m);

    const inst = join(dir, 'deb-root');
    const admin = join(dir, 'deb-admin');
    for (const d of [inst, join(admin, 'info'), join(admin, 'updates')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(admin, 'status'), '');
    // An empty private database: the package needs nothing installed. Scripts
    // run without chroot, with DPKG_ROOT=<instdir>, so they must not touch /.
    const dpkg = (args: string[]) =>
      run('dpkg', [`--instdir=${inst}`, `--admindir=${admin}`, '--force-not-root', '--force-script-chrootless', ...args]);
    await dpkg(['-i', deb]);
    expect((await run(join(inst, 'usr/lib/ferry/bin/ferry'), ['--version'])).stdout.trim()).toBe(VERSION);
    expect(readlinkSync(join(inst, 'usr/bin/ferry'))).toBe('../lib/ferry/bin/ferry');
    expect(mode(join(inst, 'etc/ferry'))).toBe('700');
    expect(mode(join(inst, 'etc/ferry/agent.yaml'))).toBe('600');
    expect(readFileSync(join(inst, 'lib/systemd/system/ferry-agent.service'), 'utf8')).toMatch(/^ExecStart=\/usr\/bin\/ferry agent /m);
    expect((await run('dpkg-query', [`--admindir=${admin}`, '-W', '-f=${Status} ${Version}', 'ferry'])).stdout).toBe(`install ok installed ${VERSION}`);

    // State written at run time goes on purge (postrm, below DPKG_ROOT).
    mkdirSync(join(inst, 'var/lib/ferry'), { recursive: true });
    writeFileSync(join(inst, 'var/lib/ferry/state.json'), '{}');
    await dpkg(['--purge', 'ferry']);
    expect(leftovers(inst)).toEqual([]);
    expect(lstatSync(inst).isDirectory()).toBe(true);
  });

  it('the .rpm requires nothing of the host, keeps the config private and as a noreplace conffile, and carries the runtime', async () => {
    const rpmFile = join(out, RPM);
    const q = async (...args: string[]) => (await run('rpm', ['-qp', ...args, rpmFile], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    expect((await q('--queryformat', '%{NAME} %{VERSION} %{RELEASE} %{ARCH}')).trim()).toBe(`ferry ${VERSION} 1 x86_64`);
    // Only the scriptlets' shell and rpm's own format features: no libc.so.6(GLIBC_2.x), no nodejs.
    expect((await q('--requires')).trim().split('\n').filter((r) => !r.startsWith('rpmlib(') && r !== '/bin/sh')).toEqual([]);
    expect((await q('--configfiles')).trim()).toBe('/etc/ferry/agent.yaml');
    expect(await q('--queryformat', '[%{FILENAMES} %{FILEFLAGS:fflags}\n]')).toMatch(/^\/etc\/ferry\/agent\.yaml cn$/m);
    const dump = await q('--dump');
    const entry = (path: string) => dump.split('\n').find((l) => l.startsWith(`${path} `))?.split(' ');
    expect(entry('/etc/ferry')?.[4]).toBe('040700');
    expect(entry('/etc/ferry/agent.yaml')?.[4]).toBe('0100600');
    expect(entry('/usr/bin/ferry')?.[10]).toBe('../lib/ferry/bin/ferry');
    expect(entry('/usr/lib/ferry/bin/ferry')?.[4]).toBe('0100755');
    expect(entry('/usr/lib/ferry/runtime/ld-linux-x86-64.so.2')?.[4]).toBe('0100755');
    for (const p of ['/usr/lib/ferry/runtime/node', '/usr/lib/ferry/runtime/lib/libc.so.6', '/usr/lib/ferry/dist/cli/bin.js', '/usr/lib/systemd/system/ferry-agent.service', '/usr/lib/systemd/system/ferry-receiver.service']) {
      expect(entry(p), p).toBeDefined();
    }
    for (const [, body] of (await q('--scripts')).matchAll(/scriptlet \(using \/bin\/sh\):\n([\s\S]*?)(?=\n\S+ scriptlet|$)/g)) {
      const f = join(dir, 'scriptlet.sh');
      writeFileSync(f, body!);
      await run('sh', ['-n', f]);
    }
  });

  it('lintian finds no errors or warnings beyond the documented overrides', async () => {
    const r = await run('lintian', ['--tag-display-limit', '0', join(out, DEB)], { maxBuffer: 16 * 1024 * 1024, timeout: 100_000 }).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    expect(r.stdout.split('\n').filter((l) => /^[EW]: /.test(l))).toEqual([]);
  });

  it('the Windows zip holds the win32-x64 addon, the launcher and the WinSW XML the CLI renders', async () => {
    const list = (await run('unzip', ['-Z1', join(out, ZIP)], { maxBuffer: 64 * 1024 * 1024 })).stdout.split('\n');
    for (const want of [
      'ferry/ferry.cmd',
      'ferry/README.md',
      'ferry/agent.sample.yaml',
      'ferry/dist/cli/bin.js',
      'ferry/native-probes/windows/disks.ps1',
      'ferry/node_modules/@antoniomuso/lz4-napi-win32-x64-msvc/lz4-napi.win32-x64-msvc.node',
      'ferry/node_modules/lz4-wasm-nodejs/lz4_wasm_nodejs_bg.wasm',
      'ferry/ferry-agent-service.xml.sample',
    ]) {
      expect(list, want).toContain(want);
    }
    expect(list.filter((n) => n.endsWith('.node') && !n.includes('win32'))).toEqual([]);
    const xml = (await run('unzip', ['-p', join(out, ZIP), 'ferry/ferry-agent-service.xml.sample'])).stdout;
    expect(xml).toContain('<executable>C:\\Program Files\\ferry\\node.exe</executable>');
    expect(xml).toContain('<arguments>--max-semi-space-size=4 &quot;C:\\Program Files\\ferry\\dist\\cli\\bin.js&quot; agent --config C:\\ProgramData\\ferry\\agent.yaml</arguments>');
  });
});
