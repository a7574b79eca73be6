// The agent end to end: `ferry agent`, `ferry control-plane` and `ferry
// receive` as real child processes on 127.0.0.1, with a forwarding proxy in
// front of the control plane (test/helpers/cp-proxy.ts) so the control plane
// can be restarted behind a stable endpoint and so the test can hand the
// agent commands the control plane would never queue. The source is a 48 MiB
// image of random data; the task's speed limit (40 Mbit/s) makes a full pass
// last ~10 s so STOP and SIGKILL land mid-pass.
import { readdirSync, chmodSync, readFileSync, writeFileSync, openSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { until } from '../helpers/wait.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.js';
import { loopbackTaskBody, TEST_SK } from '../helpers/control-plane.js';
import { sha256Of } from '../helpers/block.js';
import type { CpProxy } from '../helpers/cp-proxy.js';
import { startAgentLab, type AgentLab, type LabAgent } from '../helpers/agent-lab.js';
import { decompressFrame } from 'lz4-napi';

const MiB = 1024 * 1024;
const SIZE = 48 * MiB;
const PASSWORD = 'op-password-SECRET-7f3a';

describe('ferry agent end to end', () => {
  let lab: AgentLab;
  let proxy: CpProxy;
  let agent: LabAgent;
  let sourceId: string;
  let taskId: string;

  const state = () => lab.state();
  const task = async () => (await lab.cp.call('GET', `/v3/tasks/${taskId}`)).body;
  const action = async (operation: string) => {
    const r = await lab.cp.call('POST', `/v3/tasks/${taskId}/action`, { operation });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  };
  const commands = async () => (await lab.cp.call('GET', `/v3/sources/${sourceId}/commands`)).body.commands as Array<{ command_name: string; state: string; result?: string; result_detail?: Record<string, unknown> }>;

  beforeAll(async () => {
    lab = await startAgentLab({
      prefix: 'ferry-agent-e2e-',
      password: PASSWORD,
      volume: { kind: 'block', size: SIZE },
      proxy: true,
      controlPlane: ['request_timeout: 5'],
      logFile: true,
      config: ['sync: {every_hours: 168}'],
    });
    proxy = lab.proxy!;
  });

  afterAll(async () => {
    if (process.env.FERRY_E2E_DUMP && lab) writeFileSync(process.env.FERRY_E2E_DUMP, lab.agents.map((a) => a.out()).join('\n=== restart ===\n'));
    await lab?.stop();
  });

  it('refuses a config that others can read', async () => {
    chmodSync(lab.configPath, 0o644);
    const r = await runFerry(['agent', '--config', lab.configPath]);
    chmodSync(lab.configPath, 0o600);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/agent\.yaml: holds secrets but has mode 644/);
  });

  it('registers with the control plane', async () => {
    agent = lab.startAgent();
    sourceId = await until('registration', async () => (await state())?.sourceId);
    const s = await lab.cp.call('GET', `/v3/sources/${sourceId}`);
    expect(s.status).toBe(200);
    const t = await lab.cp.call(
      'POST',
      '/v3/tasks',
      loopbackTaskBody({
        name: 'e2e',
        type: 'MIGRATE_BLOCK',
        sourceId,
        vmId: 'vm-e2e',
        disks: [{ name: 'disk0', size: SIZE, used_size: SIZE, device_use: 'BOOT', physical_volumes: [] }],
        receiver: lab.recv.info,
        extra: { speed_limit: 40 },
      }),
    );
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    taskId = t.body.id;
  });

  it('START runs the task with progress; STOP mid-pass stops within seconds; START resumes', async () => {
    await action('start');
    await until('progress on disk0', async () => ((await state())?.task?.volumes.disk0?.doneBytes ?? 0) > 4 * MiB);
    expect((await commands()).find((c) => c.command_name === 'START')).toMatchObject({ result: 'success' });

    // An expired token mid-task: the agent fetches a new one and carries on.
    const before = proxy.tokens().length;
    const expired = proxy.expireCurrentToken();
    expect(expired).toBeTruthy();
    await until('a renewed token', () => proxy.tokens().length > before);
    expect(proxy.seen.some((r) => r.method === 'POST' && r.path === '/v3/auth/tokens' && r.status === 201)).toBe(true);

    await action('stop');
    // Bounded by until()'s deadline, which only catches a hang: no speed is asserted.
    await until('STOP result', async () => (await commands()).find((c) => c.command_name === 'STOP' && c.result));
    const st = await state();
    expect(st?.task?.status).toBe('stopped');
    const doneAtStop = st!.task!.volumes.disk0!.doneBytes;
    expect(doneAtStop).toBeLessThan(SIZE);
    await until('task aborted', async () => ['ABORT', 'ABORTING'].includes((await task()).state) && (await task()).state);

    await action('start');
    await until('pass running again', async () => ((await state())?.task?.volumes.disk0?.doneBytes ?? 0) > doneAtStop + 2 * MiB);
  });

  it('stops gracefully on SIGTERM mid-pass (exit 0, the pass saved), and the next start resumes', async () => {
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(agent.out()).toMatch(/pass interrupted by shutdown; it resumes when the agent starts again/);
    const st = await state();
    expect(st!.task!.status).toBe('running');
    const acked = st!.task!.volumes.disk0!.doneBytes;
    expect(acked).toBeLessThan(SIZE);
    agent = lab.startAgent();
    await until('the pass goes on', async () => ((await state())?.task?.volumes.disk0?.doneBytes ?? 0) > acked + 2 * MiB);
  });

  it('resumes after SIGKILL without resending what the receiver acknowledged', async () => {
    agent.child.kill('SIGKILL');
    await agent.exited;
    const acked = (await state())!.task!.volumes.disk0!.doneBytes;
    expect((await state())!.task!.status).toBe('running');
    agent = lab.startAgent();
    await until('task finished', async () => (await state())?.task?.status === 'finished', 90_000);
    expect(await sha256Of(lab.target)).toBe(await sha256Of(lab.source));
    const m = agent.out().match(/"volume":"disk0","pass":"\w+","bytesOnWire":(\d+)/);
    expect(m).toBeTruthy();
    // The resumed pass sent at most the rest of the volume, plus one commit window of re-sent data.
    expect(Number(m![1])).toBeLessThan(SIZE - acked + 10 * MiB);
    await until('MIGRATE_SUCCESS', async () => (await task()).state === 'MIGRATE_SUCCESS');
    const progress = await lab.cp.call('GET', `/v3/tasks/${taskId}/progress-history`);
    expect(JSON.stringify(progress.body)).toMatch(/"progress":100/);

    const status = await runFerry(['status', '--data-dir', lab.dataDir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`task: +${taskId} \\(e2e\\) +MIGRATE_BLOCK +finished`));
    expect(status.stdout).toMatch(/disk0 +block +100%/);
    expect(status.stdout).toMatch(/agent: +pid \d+ running/);
  });

  it('UPLOAD_LOG sends the logs as tar + lz4', async () => {
    const r = await lab.cp.call('POST', `/v3/tasks/${taskId}/collect-log`, {});
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const done = await until('UPLOAD_LOG result', async () => (await commands()).find((c) => c.command_name === 'UPLOAD_LOG' && c.result));
    expect(done.result).toBe('success');
    const stored = readdirSync(join(lab.dir, 'cp', 'logs', taskId));
    expect(stored.length).toBe(1);
    const archive = readFileSync(join(lab.dir, 'cp', 'logs', taskId, stored[0]!));
    expect(archive.subarray(0, 4).toString('hex')).toBe('04224d18');
    const tarBytes = await decompressFrame(archive);
    expect(tarBytes.toString('latin1')).toMatch(/agent\.log/);
    expect(tarBytes.toString('latin1')).toMatch(/"msg":"volume replicated"/);
    expect(tarBytes.toString('latin1')).not.toContain(PASSWORD);
  });

  it('answers a malformed and an unknown command with fail and keeps running', async () => {
    proxy.inject.push(
      { command_name: 'REBOOT', command_param: { task_id: taskId } },
      { command_name: 'SYNC', command_param: {} },
      { command_name: 'START', command_param: 'not-an-object' },
    );
    await until('three injected results', () => proxy.injectedResults.length >= 3);
    expect(proxy.injectedResults[0]).toMatchObject({ command_name: 'REBOOT', result: 'fail' });
    expect(proxy.injectedResults[0]!.result_detail!.msg).toMatch(/unknown command "REBOOT"/);
    expect(proxy.injectedResults[1]).toMatchObject({ command_name: 'SYNC', result: 'fail' });
    expect(proxy.injectedResults[1]!.result_detail!.msg).toMatch(/SYNC needs command_param\.task_id/);
    expect(proxy.injectedResults[2]).toMatchObject({ result: 'fail' });
    expect(proxy.injectedResults[2]!.result_detail!.msg).toMatch(/malformed command: .*command_param/);
    const polls = proxy.seen.length;
    await until('polling goes on', () => proxy.seen.length > polls + 2);
    expect(agent.child.exitCode).toBeNull();
  });

  it('survives the control plane being down for 30 s, then SYNC sends a delta', async () => {
    const fd = openSync(lab.source, 'r+');
    for (let i = 0; i < 8; i++) writeSync(fd, randomBytes(64 * 1024), 0, 64 * 1024, i * 5 * MiB);
    fsyncSync(fd);
    closeSync(fd);

    await lab.cp.stop();
    await new Promise((r) => setTimeout(r, 30_000));
    expect(agent.child.exitCode).toBeNull();
    await lab.startCp();
    await until('agent reconnects', () => /control plane reachable again/.test(agent.out()), 90_000);
    expect(agent.out()).toMatch(/control plane unreachable; retrying/);

    await action('sync');
    await until('second pass done', async () => (await state())?.task?.passesDone === 2, 60_000);
    expect(await sha256Of(lab.target)).toBe(await sha256Of(lab.source));
    const deltas = [...agent.out().matchAll(/"volume":"disk0","pass":"delta","bytesOnWire":(\d+)/g)];
    expect(Number(deltas.at(-1)![1])).toBeLessThan(4 * MiB);
  });

  it('DELETE stops reporting and forgets the source; SIGTERM exits cleanly', async () => {
    const del = await lab.cp.call('DELETE', `/v3/tasks/${taskId}`);
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    await until('source forgotten', async () => (await state()) && !(await state())!.sourceId);
    expect((await state())!.task).toBeUndefined();
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('never logs a secret', async () => {
    const logs = lab.agents.map((a) => a.out()).join('\n') + readFileSync(lab.logFile, 'utf8');
    expect(logs.length).toBeGreaterThan(1000);
    for (const secret of [PASSWORD, lab.recv.info.token, TEST_SK, ...proxy.tokens()]) {
      expect(logs.includes(secret), `a secret (${secret.slice(0, 4)}…) appears in the logs`).toBe(false);
    }
  });
});
