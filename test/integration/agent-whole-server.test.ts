// The daemon migrates a whole server, end to end on the local control plane:
// `ferry control-plane`, `ferry receive --disk disk0=… --disk disk1=…` (blank
// sparse images) and `ferry agent` (config: system.source_root and
// system.source_disks, no volumes) as real child processes on 127.0.0.1,
// and issue 15's two-disk source server on loop devices
// (test/helpers/system-lab.ts). A file-level task whose target_server is the
// source's own layout (as `ferry migrate --layout` or SMS would send it)
// reports FORMAT_DISK_LINUX_FILE, then MIGRATE_LINUX_FILE, each monotonic,
// and succeeds; a SYNC then reports SYNC_LINUX_FILE only and the receiver
// recognises the layout instead of laying out again. The lab is not a
// bootable system, so the agent runs with system.configure: false; then,
// restarted with configure on, a SYNC copies and reports
// CONFIGURE_LINUX_FILE, which the receiver refuses (no /etc/os-release:
// FERRY_CONFIGURE_UNSUPPORTED): the task ends in error with that code and the
// copied data stays as it was. Root and the lab's tools are needed; run
// under /tmp/ferry-heavy.lock.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverSourceLayout } from '../../src/discovery/linux/source-layout.js';
import { targetServerFromLayout } from '../../src/layout/sms-mapping.js';
import { startAgentLab, type AgentLab, type LabAgent } from '../helpers/agent-lab.js';
import { loopbackTaskBody } from '../helpers/control-plane.js';
import { createAndStartTask, expectMonotonic, progressHistory, untilMigrated } from '../helpers/task-progress.js';
import { needs } from '../helpers/requirements.js';
import { buildSourceServer, SYSTEM_LAB_TOOLS, type SourceServer } from '../helpers/system-lab.js';
import { until } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const env = needs({ root: true, tools: [...SYSTEM_LAB_TOOLS, 'rsync'] });

describe.runIf(env.ok)('the agent daemon migrates a whole server', () => {
  let dir: string;
  let server: SourceServer;
  let lab: AgentLab | undefined;
  let agent: LabAgent;
  let taskId: string;

  const task = async () => (await lab!.cp.call('GET', `/v3/tasks/${taskId}`)).body;
  const history = () => progressHistory(lab!.cp, taskId);
  const context = () => agent.out() + lab!.recv.stderr();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-agent-whole-'));
    server = await buildSourceServer(join(dir, 'source'));
    lab = await startAgentLab({
      prefix: 'ferry-agent-whole-lab-',
      volume: {
        kind: 'system',
        // Blank target disks a little larger than their sources.
        disks: [
          { name: 'disk0', sizeBytes: server.disks[0]!.sizeBytes + 128 * MiB },
          { name: 'disk1', sizeBytes: server.disks[1]!.sizeBytes + 64 * MiB },
        ],
        sourceRoot: server.root,
        sourceDisks: server.disks.map((d) => d.device),
      },
      logFile: true,
      config: ['sync: {every_hours: 168}'],
    });
    agent = lab.startAgent();
  }, 120_000);

  afterAll(async () => {
    await lab?.stop({ agentSignal: 'SIGTERM' });
    server?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lays out the target disks (FORMAT_DISK_LINUX_FILE), then copies every file system (MIGRATE_LINUX_FILE), and succeeds', async () => {
    const { cp, recv } = lab!;
    const sourceId = await until('registration', async () => (await lab!.state())?.sourceId, 90_000, context);
    const { layout } = await discoverSourceLayout({ sourceRoot: server.root, sourceDisks: server.disks.map((d) => d.device) });
    const targetServer = { ...targetServerFromLayout(layout, 'whole-server-target'), vm_id: 'vm-whole' };
    const body = { ...loopbackTaskBody({ name: 'whole', type: 'MIGRATE_FILE', sourceId, vmId: 'vm-whole', disks: [], receiver: recv.info }), target_server: targetServer };
    taskId = await createAndStartTask(cp, body);
    expect((await task()).target_server.disks.map((d: { name: string }) => d.name)).toEqual(['Disk 0', 'Disk 1']);
    await untilMigrated(cp, taskId, 240_000, context);

    const entries = await history();
    const names = entries.map((e) => e.subtask_name);
    // FORMAT first, all of it, then MIGRATE: nothing else, no going back.
    expect([...new Set(names)]).toEqual(['FORMAT_DISK_LINUX_FILE', 'MIGRATE_LINUX_FILE']);
    expect(names.lastIndexOf('FORMAT_DISK_LINUX_FILE')).toBeLessThan(names.indexOf('MIGRATE_LINUX_FILE'));
    expectMonotonic(entries, 'FORMAT_DISK_LINUX_FILE');
    expectMonotonic(entries, 'MIGRATE_LINUX_FILE');
    const t = await task();
    expect(t.sub_tasks.map((s: { name: string; progress: number }) => [s.name, s.progress])).toEqual([
      ['FORMAT_DISK_LINUX_FILE', 100],
      ['MIGRATE_LINUX_FILE', 100],
    ]);
    expect(agent.out()).toMatch(/"layout":"created"[^\n]*"msg":"whole server replicated"/);
    const st = (await lab!.state())!.task!;
    expect(st).toMatchObject({ status: 'finished', passesDone: 1, system: { migrationId: taskId } });
    // Every file system the source mounts was copied (the btrfs subvolumes each on their own).
    expect(Object.keys(st.volumes).length).toBeGreaterThanOrEqual(6);
    for (const v of Object.values(st.volumes)) expect(v.phase).toBe('done');
  }, 300_000);

  it('a SYNC copies the changes without laying out again: SYNC_LINUX_FILE only, the receiver recognises the layout', async () => {
    const { cp } = lab!;
    const before = (await history()).length;
    const sync = await cp.call('POST', `/v3/tasks/${taskId}/action`, { operation: 'sync' });
    expect(sync.status, JSON.stringify(sync.body)).toBe(200);
    await until('the delta pass', async () => (await lab!.state())?.task?.passesDone === 2, 240_000, context);
    await until('MIGRATE_SUCCESS again', async () => (await task()).state === 'MIGRATE_SUCCESS', 60_000, context);
    const later = (await history()).slice(before);
    expect([...new Set(later.map((e) => e.subtask_name))]).toEqual(['SYNC_LINUX_FILE']);
    expectMonotonic(later, 'SYNC_LINUX_FILE');
    expect(agent.out()).toMatch(/"layout":"recognised"[^\n]*"msg":"whole server replicated"/);
  }, 300_000);

  it('with system.configure on, a SYNC reports CONFIGURE_LINUX_FILE after the copy; the lab is no system configure knows: the task fails with FERRY_CONFIGURE_UNSUPPORTED, the data intact', async () => {
    const { cp } = lab!;
    agent.child.kill('SIGTERM');
    await agent.exited;
    const config = readFileSync(lab!.configPath, 'utf8');
    expect(config).toContain('  configure: false\n');
    writeFileSync(lab!.configPath, config.replace('  configure: false\n', '  configure: true\n'), { mode: 0o600 });
    agent = lab!.startAgent();
    const before = (await history()).length;
    const sync = await cp.call('POST', `/v3/tasks/${taskId}/action`, { operation: 'sync' });
    expect(sync.status, JSON.stringify(sync.body)).toBe(200);
    await until('MIGRATE_FAIL', async () => (await task()).state === 'MIGRATE_FAIL', 240_000, context);
    const t = await task();
    expect(JSON.parse(t.error_json)).toMatchObject({ error_code: 'FERRY_CONFIGURE_UNSUPPORTED' });
    const later = (await history()).slice(before);
    expect([...new Set(later.map((e) => e.subtask_name))]).toEqual(['SYNC_LINUX_FILE', 'CONFIGURE_LINUX_FILE']);
    expectMonotonic(later, 'SYNC_LINUX_FILE');
    const configure = later.filter((e) => e.subtask_name === 'CONFIGURE_LINUX_FILE');
    expect(configure.every((e) => e.progress === 0)).toBe(true);
    expect(configure.at(-1)!.process_trace).toMatch(/^configure failed: .*no \/etc\/os-release.*nothing was changed; the copied data is intact/);
    const st = (await lab!.state())!.task!;
    expect(st).toMatchObject({ status: 'failed', error: { code: 'FERRY_CONFIGURE_UNSUPPORTED' } });
    // Every volume's copy stands: configure refused before changing anything.
    for (const v of Object.values(st.volumes)) expect(v.phase).toBe('done');
  }, 300_000);
});
