// The single executable (Node SEA) built by packaging/build.sh: one file
// that runs without node_modules or a system Node. It replicates an image
// block by block to a receiver that is the same executable, with lz4 (the
// native addon, loaded from a SEA asset) and xxhash-wasm, byte for byte, and
// a file tree with its xattrs (the xattr addon, loaded only when the file
// engine runs), walked with ferry's own native module (an asset too); the
// addon files it writes are checked before loading, so a
// planted file is replaced, and an unsafe directory is refused. Its worker
// threads (compression, directory listing, small-file reads) start from
// source text inside the executable: no FERRY_WORKER fallback warning.
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import { waitForLine } from '../helpers/cli.js';
import { sha256FileSync } from '../helpers/block.js';
import { needs, toolOnPath } from '../helpers/requirements.js';

const run = promisify(execFile);
const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const MiB = 1024 * 1024;

const env = needs({ tools: ['bash', 'tar', 'npm'] });

describe.runIf(env.ok)('single executable (Node SEA)', () => {
  let dir: string;
  let ferry: string;
  let nativeDir: string;

  beforeAll(async () => {
    if (!existsSync(join(REPO, 'dist/cli/bin.js'))) throw new Error('dist/ is missing: run npm run build first');
    dir = mkdtempSync(join(tmpdir(), 'ferry-sea-test-'));
    await run('bash', [join(REPO, 'packaging/build.sh'), '--skip-build', '--fast', '--no-deb', '--no-rpm', '--no-windows', '--out', join(dir, 'out')], {
      cwd: REPO,
      timeout: 200_000,
    });
    // Copied away from the staging tree: it needs nothing beside it.
    ferry = join(dir, 'ferry');
    await run('cp', [join(dir, 'out', `ferry-${VERSION}-linux-x64`), ferry]);
    rmSync(join(dir, 'out'), { recursive: true });
    nativeDir = join(dir, 'native');
  }, 240_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Unlike the tarball, .deb and .rpm (which start node through their bundled
  // loader), the single executable is one ELF file whose loader and libc are
  // the host's: documented as glibc >= 2.28, and it asks for no more.
  it.runIf(toolOnPath('objdump'))('uses the host glibc and needs no symbol version newer than 2.28', async () => {
    const { stdout } = await run('objdump', ['-T', ferry], { maxBuffer: 64 * 1024 * 1024 });
    const versions = [...new Set([...stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const))];
    expect(versions.length).toBeGreaterThan(0);
    expect(versions.filter(([a, b]) => a > 2 || (a === 2 && b > 28))).toEqual([]);
    expect((await run('objdump', ['-p', ferry])).stdout).toMatch(/NEEDED\s+libc\.so\.6/);
  });

  it('replicates an image with lz4 to a receiver that is the same executable, byte for byte', async () => {
    const source = join(dir, 'source.img');
    const target = join(dir, 'target.img');
    const text = Buffer.alloc(4 * MiB, 'a single executable carries its own addons\n');
    writeFileSync(source, Buffer.concat([randomBytes(2 * MiB), text, Buffer.alloc(2 * MiB)]));
    writeFileSync(target, Buffer.alloc(0));
    truncateSync(target, 8 * MiB);
    const childEnv = { ...process.env, FERRY_NATIVE_DIR: nativeDir, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

    expect((await run(ferry, ['--version'], { env: childEnv })).stdout.trim()).toBe(VERSION);

    const receiver = spawn(ferry, ['receive', '--listen', '127.0.0.1:0', '--data', join(dir, 'recv'), '--target', `disk0=${target}`], { env: childEnv });
    let receiverErr = '';
    receiver.stderr.on('data', (b: Buffer) => (receiverErr += b.toString()));
    try {
      const line = await waitForLine(receiver, /listening on 127\.0\.0\.1:(\d+) fingerprint=(\S+) token=(\S+)/);
      const [, port, fingerprint, token] = line;
      const { stdout, stderr } = await run(ferry, ['migrate', '--to', `127.0.0.1:${port}`, '--token', token!, '--fingerprint', fingerprint!, '--block', `${source}=disk0`, '--json'], {
        env: { ...childEnv, FERRY_LOG_LEVEL: 'debug' },
        timeout: 60_000,
      });
      const [summary] = JSON.parse(stdout) as { totalBytes: number; bytesOnWire: number; bytesSkippedZero: number }[];
      expect(summary!.totalBytes).toBe(8 * MiB);
      expect(summary!.bytesSkippedZero).toBe(2 * MiB);
      // The compressible 4 MiB went through lz4: far less than 6 MiB of data crossed.
      expect(summary!.bytesOnWire).toBeLessThan(3 * MiB);
      // … on the host's liblz4, through ferry's native module written out of the executable's asset …
      expect(stderr).toMatch(/"lz4":"liblz4"[^\n]*"msg":"block session open"/);
      // … never on the TypeScript fallback (the wasm module, kept for hosts without liblz4, came from the executable's asset).
      expect(stderr).not.toMatch(/FERRY_LZ4_WASM/);
      // … on worker threads: their bodies loaded from source text inside the executable (no fallback warning).
      expect(stderr).not.toMatch(/FERRY_WORKER/);
    } finally {
      receiver.kill('SIGTERM');
      await new Promise((r) => (receiver.exitCode !== null ? r(null) : receiver.once('exit', r)));
    }
    expect(receiverErr).not.toMatch(/FERRY_LZ4_WASM/);
    expect(sha256FileSync(target)).toBe(sha256FileSync(source));
    // Block replication compresses with the host's liblz4 through ferry's own native module, which came out
    // of the executable's assets; the xattr addon is loaded only when the file engine runs (next test).
    expect(readdirSync(nativeDir).map((n) => n.replace(/^[0-9a-f]{32}-/, ''))).toEqual(['ferry-fs.node']);
  });

  it('replicates a file tree with its xattrs (the xattr addon, loaded lazily from its asset)', async () => {
    const src = join(dir, 'tree');
    const dst = join(dir, 'tree-target');
    mkdirSync(src);
    mkdirSync(dst);
    writeFileSync(join(src, 'a.txt'), 'hello from a single executable\n');
    setAttributeSync(join(src, 'a.txt'), 'user.ferry', Buffer.from('kept'));
    const childEnv = { ...process.env, FERRY_NATIVE_DIR: nativeDir, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
    const receiver = spawn(ferry, ['receive', '--listen', '127.0.0.1:0', '--data', join(dir, 'recv-files'), '--target', `files0=${dst}`], { env: childEnv });
    try {
      const [, port, fingerprint, token] = await waitForLine(receiver, /listening on 127\.0\.0\.1:(\d+) fingerprint=(\S+) token=(\S+)/);
      const { stderr } = await run(ferry, ['migrate', '--to', `127.0.0.1:${port}`, '--token', token!, '--fingerprint', fingerprint!, '--files', `${src}=files0`, '--state', join(dir, 'state'), '--json'], {
        env: { ...childEnv, FERRY_LOG_LEVEL: 'debug' },
        timeout: 60_000,
      });
      // The walk's listers and the small-file reader ran on worker threads (no fallback warning).
      expect(stderr).not.toMatch(/FERRY_WORKER/);
      // The walk used ferry's native module, which came out of the executable's asset.
      expect(stderr).toMatch(/"lister":"native"[^\n]*"msg":"walk"/);
    } finally {
      receiver.kill('SIGTERM');
      await new Promise((r) => (receiver.exitCode !== null ? r(null) : receiver.once('exit', r)));
    }
    expect(readFileSync(join(dst, 'a.txt'), 'utf8')).toBe('hello from a single executable\n');
    expect(Buffer.from(getAttributeSync(join(dst, 'a.txt'), 'user.ferry')!).toString()).toBe('kept');
    expect(readdirSync(nativeDir).map((n) => n.replace(/^[0-9a-f]{32}-/, '')).sort()).toEqual(['ferry-fs.node', 'xattr.node']);
  });

  it('replaces a planted addon file and refuses a directory others can write', async () => {
    // `agent` loads the daemon, which loads lz4-napi (for log bundles), then
    // stops at the missing config: FERRY_CONFIG means the addon loaded.
    const loadLz4 = ['agent', '--config', join(dir, 'no-such-config.yaml')];
    const first = await run(ferry, loadLz4, { env: { ...process.env, FERRY_NATIVE_DIR: nativeDir } }).catch((e: { code: number; stderr: string }) => e);
    expect((first as { stderr: string }).stderr).toContain('FERRY_CONFIG');
    const planted = readdirSync(nativeDir).find((n) => n.endsWith('-lz4-napi.node'))!;
    rmSync(join(nativeDir, planted));
    writeFileSync(join(nativeDir, planted), 'not an ELF file', { mode: 0o755 });
    const replaced = await run(ferry, loadLz4, { env: { ...process.env, FERRY_NATIVE_DIR: nativeDir } }).catch((e: { code: number; stderr: string }) => e);
    expect((replaced as { stderr: string }).stderr).toContain('FERRY_CONFIG');
    expect(readFileSync(join(nativeDir, planted)).length).toBeGreaterThan(100_000);

    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const refused = await run(ferry, loadLz4, { env: { ...process.env, FERRY_NATIVE_DIR: open } }).catch((e: { code: number; stderr: string }) => e);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toContain(`${open} must be a directory owned by uid`);
    // A private directory below one that others can write (not sticky): refused too.
    const below = join(open, 'mine');
    mkdirSync(below, { mode: 0o700 });
    const under = await run(ferry, loadLz4, { env: { ...process.env, FERRY_NATIVE_DIR: below } }).catch((e: { code: number; stderr: string }) => e);
    expect(under).toMatchObject({ code: 1 });
    expect((under as { stderr: string }).stderr).toContain(`${open}, above ${below}, must be owned by root`);
  });
});
