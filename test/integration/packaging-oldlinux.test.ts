// The Linux release runs where the host's C library cannot help it: each of
// the tarball (installed with its install.sh --root), the .deb's payload
// (dpkg-deb -x) and the .rpm's (rpm2cpio | cpio) goes into a root with NO C
// library at all — an empty directory with a static busybox as /bin/sh and
// /proc, /sys, /dev bound in — and runs there through chroot: --version,
// discover (warnings for the missing tools, a body the registration schema
// accepts), a block-level and a file-level `ferry migrate` to a `ferry
// receive` running outside the root (targets identical: sha256, rsync
// -aHAX), and the ferry process maps no shared object from outside the
// bundle (read from its /proc/self/maps at exit, paths as seen in the root).
// On the host, ferry from the tarball maps only its bundled libraries while
// the tools it runs map the host's libc and see no variable of the bundle.
// In the tarball's root, `ferry demo` starts its children, and the unit
// `ferry service install` writes starts ferry, through the launcher
// (process.execPath is the bundled loader there).
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourceRegistrationSchema } from '../../src/sms/schemas/source.js';
import { fillVolume, parseSummaries, sha256FileSync, startReceiver, type RunningReceiver } from '../helpers/block.js';
import { buildTree, rsyncDiff } from '../helpers/file-tree.js';
import { needs } from '../helpers/requirements.js';

const run = promisify(execFile);
const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const MiB = 1024 * 1024;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const env = needs({
  root: true,
  tools: ['bash', 'tar', 'npm', 'dpkg-deb', 'rpmbuild', 'rpm2cpio', 'cpio', 'busybox', 'readelf', 'chroot', 'mount', 'umount', 'rsync', 'setfattr', 'setfacl', 'mknod'],
});

interface Flavour {
  name: 'tarball' | 'deb' | 'rpm';
  /** The command an operator types, inside the root. */
  ferry: string;
  /** Where the bundle lives, inside the root. */
  prefix: string;
}
const FLAVOURS: Flavour[] = [
  { name: 'tarball', ferry: '/usr/local/bin/ferry', prefix: '/opt/ferry' },
  { name: 'deb', ferry: '/usr/bin/ferry', prefix: '/usr/lib/ferry' },
  { name: 'rpm', ferry: '/usr/bin/ferry', prefix: '/usr/lib/ferry' },
];

/** Written into each root: at exit, the ferry process copies its own /proc/self/maps to /probe. */
const MAPS_PROBE = `process.on('exit', () => {
  const fs = require('node:fs');
  fs.writeFileSync('/probe/' + process.pid + '-' + require('node:worker_threads').threadId + '.maps', fs.readFileSync('/proc/self/maps'));
});
`;

/** File-backed mappings of a /proc/PID/maps text (not [heap], [vdso], anonymous …). */
function mappedFiles(maps: string): string[] {
  const out = new Set<string>();
  for (const line of maps.split('\n')) {
    const path = line.split(/\s+/).slice(5).join(' ');
    if (path.startsWith('/')) out.add(path.replace(/ \(deleted\)$/, ''));
  }
  return [...out].sort();
}

const isSharedObject = (p: string) => /\.so(\.\d+)*$|\.node$/.test(p);

describe.runIf(env.ok)('the Linux release on a host without a usable C library', () => {
  let dir: string;
  let out: string;
  let recv: RunningReceiver;
  const mounts: string[] = [];
  const roots = {} as Record<Flavour['name'], string>;

  /** Runs a command inside a root through chroot, with a minimal environment (no HOME). */
  const inRoot = (root: string, args: string[], extraEnv: Record<string, string> = {}, timeout = 60_000) =>
    run('chroot', [root, ...args], { env: { PATH, ...extraEnv }, timeout, maxBuffer: 16 * MiB });

  async function makeRoot(name: string): Promise<string> {
    const root = join(dir, `root-${name}`);
    for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'data', 'probe']) mkdirSync(join(root, d), { recursive: true });
    chmodSync(join(root, 'tmp'), 0o1777);
    // Debian's busybox-static: runs its applets (readlink, dirname) without a C library or links.
    copyFileSync((await run('sh', ['-c', 'command -v busybox'])).stdout.trim(), join(root, 'bin/sh'));
    chmodSync(join(root, 'bin/sh'), 0o755);
    writeFileSync(join(root, 'probe/maps-at-exit.cjs'), MAPS_PROBE);
    for (const d of ['proc', 'sys', 'dev']) {
      await run('mount', ['--bind', `/${d}`, join(root, d)]);
      mounts.push(join(root, d));
    }
    return root;
  }

  beforeAll(async () => {
    if (!existsSync(join(REPO, 'dist/cli/bin.js'))) throw new Error('dist/ is missing: run npm run build first');
    dir = mkdtempSync(join(tmpdir(), 'ferry-oldlinux-'));
    out = join(dir, 'out');
    await run('bash', [join(REPO, 'packaging/build.sh'), '--skip-build', '--fast', '--no-sea', '--no-windows', '--out', out], { cwd: REPO, timeout: 200_000 });

    for (const f of FLAVOURS) roots[f.name] = await makeRoot(f.name);
    await run('sh', [join(REPO, 'packaging/install.sh'), '--root', roots.tarball, join(out, `ferry-${VERSION}-linux-x64.tar.gz`)]);
    await run('dpkg-deb', ['-x', join(out, `ferry_${VERSION}_amd64.deb`), roots.deb]);
    await run('sh', ['-c', 'rpm2cpio "$1" | cpio -idm --quiet', 'sh', join(out, `ferry-${VERSION}-1.x86_64.rpm`)], { cwd: roots.rpm });

    // One receiver outside every root, with a block and a file target per flavour.
    const targets: string[] = [];
    for (const f of FLAVOURS) {
      const img = join(dir, `target-${f.name}.img`);
      writeFileSync(img, '');
      truncateSync(img, 8 * MiB);
      mkdirSync(join(dir, `target-${f.name}-tree`));
      targets.push(`disk-${f.name}=${img}`, `files-${f.name}=${join(dir, `target-${f.name}-tree`)}`);
    }
    recv = await startReceiver(join(dir, 'receiver'), targets);
  }, 300_000);

  afterAll(async () => {
    await recv?.stop();
    const failed: string[] = [];
    for (const m of mounts.reverse()) {
      await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => failed.push(m)));
    }
    // Never delete through a mount that is still there: /dev, /sys and /proc are the host's.
    const mounted = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((p) => dir && p.startsWith(`${dir}/`));
    if (failed.length > 0 || mounted.length > 0) throw new Error(`still mounted, ${dir} left in place: ${[...failed, ...mounted].join(', ')}`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('each root has no C library outside the bundle: only busybox (static) and the installed tree', async () => {
    for (const f of FLAVOURS) {
      const { stdout } = await run('find', [roots[f.name], '-path', `${roots[f.name]}/proc`, '-prune', '-o', '-path', `${roots[f.name]}/sys`, '-prune', '-o', '-path', `${roots[f.name]}/dev`, '-prune', '-o', '-name', 'libc.so*', '-print']);
      expect(stdout.trim().split('\n').map((p) => p.slice(roots[f.name].length))).toEqual([`${f.prefix}/runtime/lib/libc.so.6`]);
    }
    const interp = await run('sh', ['-c', 'LC_ALL=C readelf -l "$1" | grep -c "program interpreter" || true', 'sh', join(roots.tarball, 'bin/sh')]);
    expect(interp.stdout.trim()).toBe('0');
  });

  describe.each(FLAVOURS)('$name', (f) => {
    const root = () => roots[f.name];

    it('--version, and discover: warnings for the missing tools, a body the registration schema accepts', async () => {
      expect((await inRoot(root(), [f.ferry, '--version'])).stdout.trim()).toBe(VERSION);
      const { stdout, stderr } = await inRoot(root(), [f.ferry, 'discover', '--json']);
      const { body, warnings } = JSON.parse(stdout) as { body: unknown; warnings: string[] };
      const parsed = sourceRegistrationSchema.safeParse(body);
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
      expect(parsed.data!.os_type).toBe('LINUX');
      expect(warnings.some((w) => /blkid not installed/.test(w))).toBe(true);
      expect(warnings.some((w) => /pvs: not installed/.test(w))).toBe(true);
      expect(stderr).toMatch(/warning: btrfs not installed/);
    });

    it('block-level migrate of an image inside the root to the receiver outside: identical by sha256', async () => {
      const image = join(root(), 'data/source.img');
      writeFileSync(image, '');
      truncateSync(image, 8 * MiB);
      fillVolume(image, 8 * MiB, 1 * MiB);
      const { stdout } = await inRoot(root(), [
        f.ferry, 'migrate', '--to', `127.0.0.1:${recv.info.port}`, '--token', recv.info.token, '--fingerprint', recv.info.fingerprint,
        '--block', `/data/source.img=disk-${f.name}`, '--json',
      ]);
      expect(parseSummaries(stdout)[0]!.totalBytes).toBe(8 * MiB);
      expect(sha256FileSync(join(dir, `target-${f.name}.img`))).toBe(sha256FileSync(image));
    });

    it('file-level migrate of a tree inside the root (xattrs: the addon loads from the bundle); the process maps only the bundle', async () => {
      const tree = join(root(), 'data/tree');
      buildTree(tree);
      await inRoot(
        root(),
        [
          f.ferry, 'migrate', '--to', `127.0.0.1:${recv.info.port}`, '--token', recv.info.token, '--fingerprint', recv.info.fingerprint,
          '--files', `/data/tree=files-${f.name}`, '--state', '/tmp/state', '--json',
        ],
        { NODE_OPTIONS: '--require /probe/maps-at-exit.cjs' },
      );
      expect(rsyncDiff(tree, join(dir, `target-${f.name}-tree`))).toBe('');

      const dumps = readdirSync(join(root(), 'probe')).filter((n) => n.endsWith('.maps'));
      expect(dumps.length).toBeGreaterThan(0);
      for (const d of dumps) {
        // Paths are as the chrooted process saw them: relative to the root.
        const files = mappedFiles(readFileSync(join(root(), 'probe', d), 'utf8'));
        expect(files.filter((p) => !p.startsWith(`${f.prefix}/`))).toEqual([]);
        // Shared objects: the bundled runtime, the npm addons and ferry's own native lister (dist/native).
        expect(files.filter(isSharedObject).filter((p) => !p.startsWith(`${f.prefix}/runtime/`) && !p.startsWith(`${f.prefix}/node_modules/`) && !p.startsWith(`${f.prefix}/dist/native/`))).toEqual([]);
        expect(files).toEqual(expect.arrayContaining([`${f.prefix}/runtime/node`, `${f.prefix}/runtime/ld-linux-x86-64.so.2`, `${f.prefix}/runtime/lib/libc.so.6`, `${f.prefix}/runtime/lib/libstdc++.so.6`]));
      }
      const all = dumps.flatMap((d) => mappedFiles(readFileSync(join(root(), 'probe', d), 'utf8')));
      expect(all).toContain(`${f.prefix}/node_modules/@napi-rs/xattr-linux-x64-gnu/xattr.linux-x64-gnu.node`);
    });
  });

  it('ferry demo in the tarball root: its control plane, receiver and agent start through the launcher and copy an image', async () => {
    const image = join(roots.tarball, 'data/demo.img');
    writeFileSync(image, '');
    truncateSync(image, 4 * MiB);
    fillVolume(image, 4 * MiB, 1 * MiB);
    const { stdout, stderr } = await inRoot(roots.tarball, ['/usr/local/bin/ferry', 'demo', '--block', '/data/demo.img', '--data', '/tmp/demo'], {}, 90_000);
    expect(stdout + stderr).toMatch(/ferry demo OK: block-level copy/);
    expect(sha256FileSync(join(roots.tarball, 'tmp/demo/target/disk0.img'))).toBe(sha256FileSync(image));
  });

  it('lz4-napi loads in the tarball root too (the agent loads it), with librt from the bundle', async () => {
    // `agent` loads the daemon, which loads lz4-napi (log bundles), then stops at the missing config.
    const failed = await inRoot(roots.tarball, ['/usr/local/bin/ferry', 'agent', '--config', '/no-such-config.yaml'], { NODE_OPTIONS: '--require /probe/maps-at-exit.cjs' }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((failed as { stderr: string }).stderr).toContain('FERRY_CONFIG');
    const dumps = readdirSync(join(roots.tarball, 'probe')).filter((n) => n.endsWith('.maps'));
    const agent = dumps.map((d) => mappedFiles(readFileSync(join(roots.tarball, 'probe', d), 'utf8'))).find((f) => f.some((p) => p.endsWith('lz4-napi.linux-x64-gnu.node')));
    expect(agent, 'no process mapped lz4-napi').toBeDefined();
    expect(agent).toContain('/opt/ferry/runtime/lib/librt.so.1');
    expect(agent!.filter((p) => !p.startsWith('/opt/ferry/'))).toEqual([]);
  });

  it('ferry service install in the tarball root writes a unit that runs the launcher, not the bundled loader', async () => {
    const { stdout } = await inRoot(roots.tarball, ['/usr/local/bin/ferry', 'service', 'install', '--print', '--config', '/etc/ferry/agent.yaml']);
    expect(stdout).toMatch(/^ExecStart=\/usr\/local\/bin\/ferry agent --config \/etc\/ferry\/agent\.yaml$/m);
    expect(stdout).not.toContain('ld-linux');
  });

  it('on the host: ferry maps only its bundled libraries; a tool it runs maps the host libc and sees nothing the bundle set', async () => {
    const host = join(dir, 'host');
    mkdirSync(host);
    await run('sh', [join(REPO, 'packaging/install.sh'), '--root', host, '--no-systemd', join(out, `ferry-${VERSION}-linux-x64.tar.gz`)]);
    // pvs (lvm2) and blkid stand-ins that record what the tool process saw, then run the real tool.
    const wrap = join(dir, 'wrap');
    const seen = join(dir, 'seen');
    mkdirSync(wrap);
    mkdirSync(seen);
    const script = `#!/bin/sh\nn=\${0##*/}\ncat /proc/$$/maps >"${seen}/$n.$$.tool"\ncat /proc/$PPID/maps >"${seen}/$n.$$.ferry"\nenv >"${seen}/$n.$$.env"\nPATH=/usr/sbin:/usr/bin:/sbin:/bin exec "$n" "$@"\n`;
    for (const t of ['pvs', 'blkid']) {
      writeFileSync(join(wrap, t), script);
      chmodSync(join(wrap, t), 0o755);
    }
    const r = await run(join(host, 'opt/ferry/bin/ferry'), ['discover', '--json'], { env: { PATH: `${wrap}:${PATH}`, HOME: '/root' }, timeout: 60_000, maxBuffer: 16 * MiB });
    expect(sourceRegistrationSchema.safeParse((JSON.parse(r.stdout) as { body: unknown }).body).success).toBe(true);

    const runs = readdirSync(seen).filter((n) => n.endsWith('.env')).map((n) => n.slice(0, -'.env'.length));
    expect(runs.some((n) => n.startsWith('pvs.'))).toBe(true);
    const runtime = join(host, 'opt/ferry/runtime');
    for (const n of runs) {
      const tool = mappedFiles(readFileSync(join(seen, `${n}.tool`), 'utf8'));
      expect(tool.filter((p) => /\/libc\.so\.6$/.test(p) && !p.startsWith(host))).toHaveLength(1);
      expect(tool.filter((p) => p.startsWith(host))).toEqual([]);
      const ferry = mappedFiles(readFileSync(join(seen, `${n}.ferry`), 'utf8'));
      expect(ferry).toContain(join(runtime, 'lib/libc.so.6'));
      expect(ferry.filter(isSharedObject).filter((p) => !p.startsWith(`${host}/opt/ferry/`))).toEqual([]);
      const toolEnv = readFileSync(join(seen, `${n}.env`), 'utf8').split('\n').filter(Boolean);
      expect(toolEnv.filter((l) => /^(FERRY_LAUNCHER|FERRY_RUNTIME\w*|LD_LIBRARY_PATH|LD_PRELOAD)=/.test(l) || l.includes(runtime))).toEqual([]);
    }
  });
});
