// The agent running a file-level task with continuous sync (`syncing: true`):
// agent, control plane and receiver as real child processes. The first pass
// copies the tree; the sync schedule (every 2 s here) brings later changes
// over without any command; STOP ends the schedule.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { until } from '../helpers/wait.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnFerry } from '../helpers/cli.js';
import { loopbackTaskBody, type LocalCp } from '../helpers/control-plane.js';
import type { RunningReceiver } from '../helpers/block.js';
import { startAgentLab, type AgentLab, type LabAgent } from '../helpers/agent-lab.js';
import { treeDigest } from '../helpers/file-tree.js';
import { readState } from '../../src/agent/state-store.js';


/** path → sha256 of content (files) or 'dir', for every entry below root. */
const treeOf = (root: string) => treeDigest(root, { dirs: true, follow: true });

describe('ferry agent: file-level task with continuous sync', () => {
  let lab: AgentLab | undefined;
  let dir: string;
  let cp: LocalCp;
  let recv: RunningReceiver;
  let agent: LabAgent;
  let srcDir: string;
  let dstDir: string;
  let dataDir: string;
  let taskId: string;

  beforeAll(async () => {
    lab = await startAgentLab({ prefix: 'ferry-agent-file-', volume: { kind: 'file' }, config: ['sync: {schedule: "*/2 * * * * *"}'] });
    ({ dir, cp, recv, dataDir, source: srcDir, target: dstDir } = lab);
    mkdirSync(join(srcDir, 'etc', 'app'), { recursive: true });
    writeFileSync(join(srcDir, 'etc', 'app', 'app.conf'), 'listen 8080\n');
    writeFileSync(join(srcDir, 'data.bin'), randomBytes(3 * 1024 * 1024));
    for (let i = 0; i < 50; i++) writeFileSync(join(srcDir, `note-${i}.txt`), `note ${i}\n`.repeat(i + 1));
    agent = lab.startAgent();
  });

  afterAll(async () => {
    if (process.env.FERRY_E2E_DUMP && agent) writeFileSync(`${process.env.FERRY_E2E_DUMP}.file`, agent.out());
    await lab?.stop();
  });

  it('copies the tree, then keeps it in sync on the schedule until STOP', async () => {
    const sourceId = await until('registration', async () => (await readState(dataDir))?.sourceId);
    const t = await cp.call(
      'POST',
      '/v3/tasks',
      loopbackTaskBody({
        name: 'files',
        type: 'MIGRATE_FILE',
        sourceId,
        vmId: 'vm-files',
        disks: [],
        receiver: recv.info,
        extra: { syncing: true },
      }),
    );
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    taskId = t.body.id;
    expect((await cp.call('POST', `/v3/tasks/${taskId}/action`, { operation: 'start' })).status).toBe(200);

    await until('first pass', async () => (await readState(dataDir))?.task?.passesDone === 1);
    expect((await readState(dataDir))!.task!.status).toMatch(/waiting|running/);
    expect(treeOf(dstDir)).toEqual(treeOf(srcDir));

    writeFileSync(join(srcDir, 'etc', 'app', 'app.conf'), 'listen 9090\n');
    writeFileSync(join(srcDir, 'new-file.txt'), 'arrived later\n');
    await until('a scheduled delta pass brings the change', () => {
      try {
        return readFileSync(join(dstDir, 'new-file.txt'), 'utf8') === 'arrived later\n' && readFileSync(join(dstDir, 'etc', 'app', 'app.conf'), 'utf8') === 'listen 9090\n';
      } catch {
        return false;
      }
    });
    await until('that pass completes', async () => ((await readState(dataDir))?.task?.passesDone ?? 0) >= 2);
    expect(agent.out()).toMatch(/"msg":"scheduled delta pass"/);
    expect(treeOf(dstDir)).toEqual(treeOf(srcDir));
    const src = await cp.call('GET', `/v3/sources/${sourceId}`);
    expect(src.body.migration_cycle).toBe('syncing');

    expect((await cp.call('POST', `/v3/tasks/${taskId}/action`, { operation: 'stop' })).status).toBe(200);
    await until('stopped', async () => (await readState(dataDir))?.task?.status === 'stopped');
    const passes = (await readState(dataDir))!.task!.passesDone;
    await new Promise((r) => setTimeout(r, 4500));
    expect((await readState(dataDir))!.task!.passesDone).toBe(passes);

    // The operator deletes the source: the agent notices (404 / SMS.0507) and registers again.
    const del = await cp.call('DELETE', `/v3/sources/${sourceId}`, undefined, { query: { force: true } });
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    const newId = await until('re-registration', async () => {
      const id = (await readState(dataDir))?.sourceId;
      return id && id !== sourceId && id;
    });
    expect((await cp.call('GET', `/v3/sources/${newId}`)).status).toBe(200);
    expect(agent.out()).toMatch(/no longer knows this source; registering again/);
    await until('the old task dropped', async () => (await readState(dataDir))?.task === undefined);

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('refuses a receiver that presents another certificate (SMS.0304) and fails the task', async () => {
    // A second agent (own data directory, so a new source) whose task pins a wrong fingerprint.
    const data2 = join(dir, 'agent2-data');
    const config2 = join(dir, 'agent2.yaml');
    writeFileSync(
      config2,
      readFileSync(join(dir, 'agent.yaml'), 'utf8').replace(`data_dir: ${dataDir}`, `data_dir: ${data2}`),
      { mode: 0o600 },
    );
    const a2 = spawnFerry(['agent', '--config', config2]);
    let out2 = '';
    a2.stdout.on('data', (b: Buffer) => (out2 += b.toString()));
    const exited2 = new Promise((r) => a2.once('exit', (c) => r(c)));
    try {
      const sourceId = await until('registration', async () => (await readState(data2))?.sourceId);
      const t = await cp.call(
        'POST',
        '/v3/tasks',
        loopbackTaskBody({
          name: 'wrong-cert',
          type: 'MIGRATE_FILE',
          sourceId,
          vmId: 'vm-wrong',
          disks: [],
          receiver: { ...recv.info, fingerprint: 'ab'.repeat(32) },
        }),
      );
      expect(t.status, JSON.stringify(t.body)).toBe(200);
      expect((await cp.call('POST', `/v3/tasks/${t.body.id}/action`, { operation: 'start' })).status).toBe(200);
      await until('task failed', async () => (await readState(data2))?.task?.status === 'failed');
      expect((await readState(data2))!.task!.error!.code).toBe('SMS.0304');
      const shown = await until('MIGRATE_FAIL', async () => {
        const b = (await cp.call('GET', `/v3/tasks/${t.body.id}`)).body;
        return b.state === 'MIGRATE_FAIL' && b;
      });
      expect(shown.error_json).toMatch(/SMS\.0304/);
      expect(out2).not.toContain(recv.info.token);
    } finally {
      a2.kill('SIGINT'); // what Windows delivers (with SIGBREAK); the same graceful path
      expect(await exited2).toBe(0);
    }
  });
});
