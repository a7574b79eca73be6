// CPU and I/O niceness reach every thread of the process, not just the main
// one (nice values and I/O priorities are per thread on Linux, and file
// reads run on libuv's pool threads): `ferry migrate --nice/--ionice` while
// it replicates, and `ferry agent` with `niceness:` in its config.
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec } from '../../src/platform/exec.js';
import { fillVolume, migrateArgs, startReceiver, type RunningReceiver } from '../helpers/block.js';
import { runFerry, spawnFerry } from '../helpers/cli.js';
import { needs } from '../helpers/requirements.js';

/** nice (field 19 of /proc/PID/task/TID/stat) of every thread of pid. */
function threadNices(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(fields[16])); // field 19 overall; 3 is the first after ')'
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

async function ioniceOf(tid: number): Promise<string> {
  return (await exec('ionice', ['-p', String(tid)])).stdout.trim();
}

async function waitFor(child: ChildProcess, cond: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`no ${what} (exit ${child.exitCode}): ${err.slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const req = needs({ tools: ['ionice'] });
describe.runIf(process.platform === 'linux' && req.ok)('process priority', () => {
  let dir: string;
  let recv: RunningReceiver;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-nice-'));
    writeFileSync(join(dir, 'target.img'), '');
    truncateSync(join(dir, 'target.img'), 32 << 20);
    recv = await startReceiver(join(dir, 'rx'), [`disk0=${join(dir, 'target.img')}`]);
  });
  afterAll(async () => {
    await recv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('ferry migrate --nice 7 --ionice best-effort:5 lowers every thread while it replicates', async () => {
    const src = join(dir, 'source.img');
    writeFileSync(src, '');
    truncateSync(src, 32 << 20);
    fillVolume(src, 32 << 20);
    // A slow limit keeps the pass running while the test looks.
    const child = spawnFerry([...migrateArgs(recv.info, [`${src}=disk0`]), '--limit', '2M', '--nice', '7', '--ionice', 'best-effort:5']);
    try {
      const pid = child.pid!;
      // ionice is the last thing applied: once the main thread has it, look at all.
      await waitFor(child, async () => (await ioniceOf(pid).catch(() => '')) === 'best-effort: prio 5', 'ionice on the main thread');
      const nices = threadNices(pid);
      expect(nices.size).toBeGreaterThan(1);
      expect([...nices.values()].every((n) => n === 7), JSON.stringify([...nices])).toBe(true);
      for (const tid of nices.keys()) {
        const io = await ioniceOf(tid).catch(() => 'gone');
        if (io !== 'gone') expect(io, `thread ${tid}`).toBe('best-effort: prio 5');
      }
    } finally {
      await kill(child);
    }
  });

  it('ferry migrate rejects a bad --nice or --ionice with exit 2', async () => {
    const base = migrateArgs(recv.info, [`${join(dir, 'source.img')}=disk0`]);
    expect((await runFerry([...base, '--nice', '25'])).code).toBe(2);
    expect((await runFerry([...base, '--ionice', 'realtime'])).code).toBe(2);
    expect((await runFerry([...base, '--ionice', 'idle:3'])).code).toBe(2);
  });

  it('ferry agent applies niceness from its config to every thread (idle I/O class)', async () => {
    const cfg = join(dir, 'agent.yaml');
    writeFileSync(
      cfg,
      [
        'control_plane:',
        '  endpoint: http://127.0.0.1:1',
        '  auth: {token: not-a-real-token}',
        `data_dir: ${join(dir, 'agent')}`,
        'poll_interval: 5',
        'niceness: {cpu: 12, io_class: idle}',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const child = spawnFerry(['agent', '--config', cfg]);
    try {
      const pid = child.pid!;
      await waitFor(child, async () => (await ioniceOf(pid).catch(() => '')) === 'idle', 'ionice on the main thread');
      const nices = threadNices(pid);
      expect(nices.size).toBeGreaterThan(1);
      expect([...nices.values()].every((n) => n === 12), JSON.stringify([...nices])).toBe(true);
      for (const tid of nices.keys()) {
        const io = await ioniceOf(tid).catch(() => 'gone');
        if (io !== 'gone') expect(io, `thread ${tid}`).toBe('idle');
      }
    } finally {
      await kill(child);
    }
  });
});
