// A disk layout change under a running block task, end to end: `ferry
// agent`, `ferry control-plane` and `ferry receive` as real processes; the
// source is a loop device whose image file is grown mid-pass (`truncate` +
// `losetup -c`). The agent re-discovers every second, sees the new size,
// stops the pass and fails the task with SMS.0515 (in its state and at the
// control plane, which shows MIGRATE_FAIL with that code).
import { chmodSync, closeSync, fsyncSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { until } from '../helpers/wait.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnFerry } from '../helpers/cli.js';
import { loopbackTaskBody, startLocalCp, TEST_AK, TEST_SK, type LocalCp } from '../helpers/control-plane.js';
import { startReceiver, type RunningReceiver } from '../helpers/block.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';
import { readState } from '../../src/agent/state-store.js';

const MiB = 1024 * 1024;
const SIZE = 48 * MiB;
const PASSWORD = 'op-password-layout-5c1e';

const env = needs({ root: true, tools: ['losetup', 'truncate'] });
describe.runIf(env.ok)('disk layout change under a running block task', () => {
  let dir: string;
  let disk: LoopDisk | undefined;
  let cp: LocalCp;
  let recv: RunningReceiver;
  let agent: ChildProcessWithoutNullStreams | undefined;
  let out = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-layout-e2e-'));
    disk = LoopDisk.create(SIZE, 'ferry-layout-loop-');
    const fd = openSync(disk.device, 'r+');
    for (let off = 0; off < SIZE; off += 4 * MiB) writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, off);
    fsyncSync(fd);
    closeSync(fd);
    const tgt = join(dir, 'target.img');
    writeFileSync(tgt, Buffer.alloc(0));
    truncateSync(tgt, SIZE);
    const creds = join(dir, 'cp-credentials.json');
    writeFileSync(creds, JSON.stringify({ access_keys: [{ ak: TEST_AK, sk: TEST_SK }], users: [{ name: 'operator', password: PASSWORD, domain: 'ferry' }] }), { mode: 0o600 });
    cp = await startLocalCp({ http: true, credentials: creds, dataDir: join(dir, 'cp') });
    recv = await startReceiver(join(dir, 'recv'), [`disk0=${tgt}`]);
  });

  afterAll(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise((r) => agent!.once('exit', r));
      agent.kill('SIGKILL');
      await exited;
    }
    await recv?.stop();
    await cp?.stop();
    disk?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fails the task with SMS.0515 when the source disk grows mid-pass', async () => {
    const dataDir = join(dir, 'agent-data');
    const configPath = join(dir, 'agent.yaml');
    writeFileSync(
      configPath,
      [
        'control_plane:',
        `  endpoint: ${cp.url}`,
        `  auth: {user: operator, password: "${PASSWORD}", domain: ferry}`,
        `data_dir: ${dataDir}`,
        'poll_interval: 0.5',
        'rediscover_interval: 1',
        'niceness: {cpu: 0}',
        'sync: {every_hours: 168}',
        'volumes:',
        `  - {source: ${disk!.device}, target: disk0, kind: block}`,
        '',
      ].join('\n'),
    );
    chmodSync(configPath, 0o600);
    agent = spawnFerry(['agent', '--config', configPath]);
    agent.stdout.on('data', (b: Buffer) => (out += b.toString()));
    agent.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const log = () => out;
    const state = () => readState(dataDir);

    const sourceId = await until('registration', async () => (await state())?.sourceId, 60_000, log);
    const t = await cp.call(
      'POST',
      '/v3/tasks',
      loopbackTaskBody({
        name: 'layout',
        type: 'MIGRATE_BLOCK',
        sourceId,
        vmId: 'vm-layout',
        disks: [{ name: 'disk0', size: SIZE, used_size: SIZE, device_use: 'BOOT', physical_volumes: [] }],
        receiver: recv.info,
        // 40 Mbit/s: the 48 MiB pass takes ~10 s, long enough to grow the disk under it.
        extra: { speed_limit: 40 },
      }),
    );
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    const taskId = t.body.id as string;
    const start = await cp.call('POST', `/v3/tasks/${taskId}/action`, { operation: 'start' });
    expect(start.status, JSON.stringify(start.body)).toBe(200);
    await until('progress on disk0', async () => ((await state())?.task?.volumes.disk0?.doneBytes ?? 0) > 4 * MiB, 60_000, log);

    // Grow the source under the running pass: the image file, then the loop device.
    sh('truncate', ['-s', `+${8 * MiB}`, disk!.image]);
    sh('losetup', ['-c', disk!.device]);
    expect(Number(sh('blockdev', ['--getsize64', disk!.device]).trim())).toBe(SIZE + 8 * MiB);

    const failed = await until('task failed', async () => ((await state())?.task?.status === 'failed' ? (await state())!.task! : undefined), 60_000, log);
    expect(failed.error?.code).toBe('SMS.0515');
    expect(failed.volumes.disk0!.doneBytes).toBeLessThan(SIZE);
    // The daemon logs this after it has saved the failed task: the state file can show the failure first.
    await until('the layout-change log line', () => /the disk layout changed under a running block task: failed it with SMS\.0515/.test(out), 10_000, log);
    const cpTask = await until(
      'MIGRATE_FAIL at the control plane',
      async () => {
        const b = (await cp.call('GET', `/v3/tasks/${taskId}`)).body;
        return b.state === 'MIGRATE_FAIL' && b;
      },
      30_000,
      log,
    );
    expect(String(cpTask.error_json)).toContain('SMS.0515');
    // The agent itself keeps running.
    expect(agent.exitCode).toBeNull();
  });
});
