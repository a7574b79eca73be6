// A disk layout change under a running block task, end to end: `ferry
// agent`, `ferry control-plane` and `ferry receive` as real processes; the
// source is a loop device whose image file is grown mid-pass (`truncate` +
// `losetup -c`). The agent re-discovers every second, sees the new size,
// stops the pass and fails the task with SMS.0515 (in its state and at the
// control plane, which shows MIGRATE_FAIL with that code).
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { until } from '../helpers/wait.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loopbackTaskBody } from '../helpers/control-plane.js';
import { startAgentLab, type AgentLab } from '../helpers/agent-lab.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';

const MiB = 1024 * 1024;
const SIZE = 48 * MiB;
const PASSWORD = 'op-password-layout-5c1e';

const env = needs({ root: true, tools: ['losetup', 'truncate'] });
describe.runIf(env.ok)('disk layout change under a running block task', () => {
  let disk: LoopDisk | undefined;
  let lab: AgentLab | undefined;

  beforeAll(async () => {
    disk = LoopDisk.create(SIZE, 'ferry-layout-loop-');
    const fd = openSync(disk.device, 'r+');
    for (let off = 0; off < SIZE; off += 4 * MiB) writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, off);
    fsyncSync(fd);
    closeSync(fd);
    lab = await startAgentLab({
      prefix: 'ferry-layout-e2e-',
      password: PASSWORD,
      volume: { kind: 'block', size: SIZE, source: disk.device },
      config: ['rediscover_interval: 1', 'sync: {every_hours: 168}'],
    });
  });

  afterAll(async () => {
    await lab?.stop();
    disk?.destroy();
  });

  it('fails the task with SMS.0515 when the source disk grows mid-pass', async () => {
    const { cp, recv } = lab!;
    const agent = lab!.startAgent();
    const log = agent.out;
    const state = () => lab!.state();

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
    await until('the layout-change log line', () => /the disk layout changed under a running block task: failed it with SMS\.0515/.test(agent.out()), 10_000, log);
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
    expect(agent.child.exitCode).toBeNull();
  });
});
