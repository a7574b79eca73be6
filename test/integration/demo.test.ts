// `ferry demo` as a user runs it: the built CLI as a child process, which
// itself starts `ferry control-plane`, `ferry receive` and `ferry agent` as
// children on loopback. Checks the exit code, that the summary says
// verified, that none of the three children outlives the demo (by pid), and
// that neither the generated SK nor the receiver's join token appears in
// anything the demo printed.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { FERRY_BIN, runFerry, spawnFerry, waitForLine } from '../helpers/cli.js';
import { needs } from '../helpers/requirements.js';

const env = needs({ root: true, tools: ['rsync', 'mknod', 'setfattr', 'setpriv'] });

/** `ferry ARGS` as uid/gid 65534, through setpriv(1). */
function runAsNobody(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, FERRY_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The SK the demo generated (from the agent config it kept) and the receiver's join token. */
function secretsOf(data: string): string[] {
  const cfg = parse(readFileSync(join(data, 'agent.yaml'), 'utf8')) as { control_plane: { auth: { sk: string } } };
  const recv = JSON.parse(readFileSync(join(data, 'receiver', 'receiver.json'), 'utf8')) as { token: string };
  expect(cfg.control_plane.auth.sk.length).toBeGreaterThan(16);
  expect(recv.token.length).toBeGreaterThan(16);
  return [cfg.control_plane.auth.sk, recv.token];
}

describe.runIf(env.ok)('ferry demo', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-demo-test-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('copies a small tree with several entry types at file level, syncs, verifies, and prints a JSON summary', async () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'etc/app'), { recursive: true });
    mkdirSync(join(tree, 'home/user'), { recursive: true });
    writeFileSync(join(tree, 'etc/hostname'), 'demo-host\n');
    writeFileSync(join(tree, 'etc/empty'), '');
    writeFileSync(join(tree, 'etc/app/data.bin'), randomBytes(3 * 1024 * 1024));
    chmodSync(join(tree, 'etc/hostname'), 0o640);
    chownSync(join(tree, 'home/user'), 1000, 1000);
    symlinkSync('../../etc/hostname', join(tree, 'home/user/link'));
    symlinkSync('nowhere', join(tree, 'home/user/dangling'));
    linkSync(join(tree, 'etc/hostname'), join(tree, 'home/user/hard'));
    execFileSync('mknod', [join(tree, 'etc/fifo'), 'p']);
    execFileSync('setfattr', ['-n', 'user.note', '-v', 'kept', join(tree, 'etc/hostname')]);

    const data = join(dir, 'files-run');
    const r = await runFerry(['demo', '--files', tree, '--data', data, '--sync', '--json'], { timeoutMs: 60_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as {
      ok: boolean; verified: boolean; mode: string; task_state: string;
      passes: Array<{ kind: string; verification: { ok: boolean; method: string } }>;
      children: Record<string, { pid: number; exit: string }>;
    };
    expect(summary).toMatchObject({ ok: true, verified: true, mode: 'files', task_state: 'MIGRATE_SUCCESS' });
    expect(summary.passes.map((p) => [p.kind, p.verification.ok, p.verification.method])).toEqual([
      ['full', true, 'rsync'],
      ['delta', true, 'rsync'],
    ]);
    expect(Object.keys(summary.children).sort()).toEqual(['agent', 'control-plane', 'receive']);
    for (const c of Object.values(summary.children)) {
      expect(c.exit).toBe('exit code 0');
      expect(alive(c.pid), `pid ${c.pid} still running`).toBe(false);
    }
    expect(r.stderr).toMatch(/MIGRATE_SUCCESS\s+100\.0%/);
    for (const s of secretsOf(data)) expect((r.stdout + r.stderr).includes(s), 'a secret appears in the output').toBe(false);
  });

  it('copies a 64 MiB image at block level and verifies it by sha256', async () => {
    const img = join(dir, 'source.img');
    const buf = Buffer.alloc(64 * 1024 * 1024);
    for (let off = 0; off < buf.length; off += 4 * 1024 * 1024) randomBytes(1024 * 1024).copy(buf, off);
    writeFileSync(img, buf);
    const data = join(dir, 'block-run');
    const r = await runFerry(['demo', '--block', img, '--data', data], { timeoutMs: 60_000 });
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(0);
    expect(out).toMatch(/pass 1 \(full\): .* verified: sha256 [0-9a-f]{16}… matches/);
    expect(out).toMatch(/ferry demo OK: block-level copy/);
    const pids = [...out.matchAll(/^(?:control plane|receiver|agent)\s+pid (\d+)/gm)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    expect(readFileSync(join(data, 'target', 'disk0.img')).equals(buf)).toBe(true);
    for (const s of secretsOf(data)) expect(out.includes(s), 'a secret appears in the output').toBe(false);
  });

  it('on SIGINT mid-pass stops its children, says why and exits 1', async () => {
    const img = join(dir, 'source.img'); // from the block test
    const child = spawnFerry(['demo', '--block', img]);
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    await waitForLine(child, /^task\s+\S+ \(MIGRATE_BLOCK\) started/, 45_000);
    child.kill('SIGINT');
    expect(await exited, out).toBe(1);
    expect(out).toMatch(/ferry demo FAILED: interrupted/);
    expect(out).toMatch(/--- last lines of ferry agent ---/);
    const pids = [...out.matchAll(/^(?:control plane|receiver|agent)\s+pid (\d+)/gm)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    expect(out).toMatch(/data directory removed/);
  });

  it('fails with exit 1, the task\'s reason and the children\'s last log lines when the agent cannot read the source', async () => {
    // Run as nobody: a root-only file in the tree makes the file pass fail.
    const base = join(dir, 'as-nobody');
    mkdirSync(join(base, 'tree'), { recursive: true });
    chmodSync(dir, 0o755);
    chmodSync(base, 0o777);
    writeFileSync(join(base, 'tree', 'readable'), 'ok');
    writeFileSync(join(base, 'tree', 'secret'), 'root only', { mode: 0o600 });
    const r = await runAsNobody(['demo', '--files', join(base, 'tree'), '--data', join(base, 'data'), '--json']);
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(1);
    expect(r.stderr).toMatch(/ferry demo FAILED: the task ended MIGRATE_FAIL: .*EACCES.*secret/);
    expect(r.stderr).toMatch(/--- last lines of ferry agent ---\n(.*\n)*.*ERROR task failed/);
    const summary = JSON.parse(r.stdout) as { ok: boolean; verified: boolean; error: { code: string }; children: Record<string, { pid: number }> };
    expect(summary).toMatchObject({ ok: false, verified: false, error: { code: 'FERRY_DEMO_TASK' } });
    for (const c of Object.values(summary.children)) expect(alive(c.pid), `pid ${c.pid} still running`).toBe(false);
    for (const s of secretsOf(join(base, 'data'))) expect(out.includes(s), 'a secret appears in the output').toBe(false);
  });

  it('refuses a source that is not there (exit 2) and starts nothing', async () => {
    const r = await runFerry(['demo', '--files', join(dir, 'missing')], { timeoutMs: 20_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing: ENOENT/);
  });
});
