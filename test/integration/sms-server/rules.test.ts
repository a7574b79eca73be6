// State rules of the local control plane beyond the document's examples:
// force delete (compare SMC DeleteSourceServer), the command queue's
// delivered-once order, changestate moving the current task, and log upload.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES } from '../../fixtures/sms-request-examples.js';
import { removeDir, startLocalCp, type LocalCp } from '../../helpers/control-plane.js';

let cp: LocalCp;
beforeAll(async () => {
  cp = await startLocalCp({ http: true });
});
afterAll(async () => {
  await cp?.stop();
  if (cp) removeDir(cp.dataDir);
});

async function sourceWithTask(vm: string): Promise<{ source: string; task: string }> {
  const s = await cp.call('POST', '/v3/sources', { ...EXAMPLES.register.body, hostname: vm });
  const t = await cp.call('POST', '/v3/tasks', {
    ...EXAMPLES.createTask.body,
    source_server: { id: s.body.id },
    target_server: { ...EXAMPLES.createTask.body.target_server, vm_id: vm },
  });
  expect(t.status, JSON.stringify(t.body)).toBe(200);
  return { source: s.body.id, task: t.body.id };
}

describe('control-plane state rules', () => {
  it('deletes a source with a paused task only when forced, and takes the task with it', async () => {
    const { source, task } = await sourceWithTask('vm-force');
    expect((await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'start' })).status).toBe(200);
    expect((await cp.call('GET', `/v3/sources/${source}/command`)).body.command_name).toBe('START');
    const forcedWhileRunning = await cp.call('DELETE', `/v3/sources/${source}`, undefined, { query: { force: true } });
    expect(forcedWhileRunning.body.error_code).toBe('SMS.7601');
    expect((await cp.call('PUT', `/v3/sources/${source}/changestate`, { copystate: 'STOPPED', migrationcycle: 'replicating' })).status).toBe(200);
    expect((await cp.call('GET', `/v3/tasks/${task}`)).body.state).toBe('ABORT');

    const plain = await cp.call('DELETE', `/v3/sources/${source}`);
    expect(plain.status).toBe(400);
    expect(plain.body).toMatchObject({ error_code: 'SMS.7601', error_param: [task] });
    expect((await cp.call('DELETE', `/v3/sources/${source}`, undefined, { query: { force: 'yes' } })).body.error_code).toBe('SMS.9001');
    expect((await cp.call('DELETE', `/v3/sources/${source}`, undefined, { query: { force: true } })).status).toBe(200);
    // Section 5.1 gives SMS.7703 and SMS.7602 HTTP 400 (issue 17; they were 404).
    expect((await cp.call('GET', `/v3/tasks/${task}`)).body).toMatchObject({ error_code: 'SMS.7703' });
    expect((await cp.call('GET', `/v3/tasks/${task}`)).status).toBe(400);
    expect((await cp.call('GET', `/v3/sources/${source}/command`)).status).toBe(400);
  });

  it('answers a re-registration of a deleted source with SMS.0507 so the agent registers again', async () => {
    const r = await cp.call('POST', '/v3/sources', { ...EXAMPLES.register.body, id: 'deleted-source-id' });
    expect(r.status).toBe(400);
    expect(r.body.error_code).toBe('SMS.0507');
  });

  it('delivers each command once, oldest first, and matches results to delivered commands', async () => {
    const { source, task } = await sourceWithTask('vm-queue');
    await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'start' });
    expect((await cp.call('GET', `/v3/sources/${source}/command`)).body).toEqual({ command_name: 'START', command_param: { task_id: task } });
    await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'stop' });
    // STOP is queued behind the delivered START; a STOP result before delivery does not match.
    expect((await cp.call('POST', `/v3/sources/${source}/command_result`, { command_name: 'STOP', result: 'success', result_detail: {} })).body.error_code).toBe('SMS.6021');
    expect((await cp.call('GET', `/v3/sources/${source}/command`)).body).toEqual({ command_name: 'STOP', command_param: { task_id: task } });
    expect((await cp.call('GET', `/v3/sources/${source}/command`)).body).toEqual({});
    const q = await cp.call('GET', `/v3/sources/${source}/commands`);
    expect(q.body.commands.map((c: { command_name: string; state: string }) => `${c.command_name}:${c.state}`)).toEqual(['START:delivered', 'STOP:delivered']);
    expect((await cp.call('POST', `/v3/sources/${source}/command_result`, { command_name: 'STOP', result: 'fail', result_detail: { reason: 'busy' } })).status).toBe(200);
    const t = (await cp.call('GET', `/v3/tasks/${task}`)).body;
    expect(t.state).toBe('RUNNING');
    expect(JSON.parse(t.error_json)).toEqual({ reason: 'busy' });
  });

  it('moves the current task with the agent\'s changestate: finished → MIGRATE_SUCCESS, then sync → SYNCING', async () => {
    const { source, task } = await sourceWithTask('vm-cycle');
    await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'start' });
    expect((await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'sync' })).body.error_code).toBe('SMS.7715');
    expect((await cp.call('PUT', `/v3/sources/${source}/changestate`, { copystate: 'FINISHED', migrationcycle: 'cutovered' })).status).toBe(200);
    const done = (await cp.call('GET', `/v3/tasks/${task}`)).body;
    expect(done.state).toBe('MIGRATE_SUCCESS');
    expect(done.finish_date).toEqual(expect.any(Number));
    expect((await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'sync' })).status).toBe(200);
    expect((await cp.call('GET', `/v3/tasks/${task}`)).body.state).toBe('SYNCING');
    expect((await cp.call('GET', `/v3/sources/${source}`)).body).toMatchObject({ state: 'syncing', migration_cycle: 'syncing' });
    const cmds = (await cp.call('GET', `/v3/sources/${source}/commands`)).body.commands.map((c: { command_name: string }) => c.command_name);
    expect(cmds).toEqual(['START', 'SYNC']);
  });

  it('takes the agent\'s copystate alone, moving the stage with it, and ignores a RUNNING report racing a stop', async () => {
    const { source, task } = await sourceWithTask('vm-agent');
    await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'start' });
    expect((await cp.call('GET', `/v3/sources/${source}/command`)).body.command_name).toBe('START');
    expect((await cp.call('PUT', `/v3/sources/${source}/changestate`, { copystate: 'REPLICATE' })).status).toBe(200);
    expect((await cp.call('GET', `/v3/sources/${source}`)).body).toMatchObject({ state: 'replicate', migration_cycle: 'replicating' });
    expect((await cp.call('PUT', `/v3/tasks/${task}`, { state: 'RUNNING' })).status).toBe(200);
    await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'stop' });
    expect((await cp.call('PUT', `/v3/tasks/${task}`, { state: 'RUNNING' })).status).toBe(200);
    expect((await cp.call('GET', `/v3/tasks/${task}`)).body.state).toBe('ABORTING');
    expect((await cp.call('PUT', `/v3/sources/${source}/changestate`, { copystate: 'STOPPED' })).status).toBe(200);
    expect((await cp.call('GET', `/v3/tasks/${task}`)).body.state).toBe('ABORT');
    await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'start' });
    expect((await cp.call('PUT', `/v3/sources/${source}/changestate`, { copystate: 'FINISHED' })).status).toBe(200);
    expect((await cp.call('GET', `/v3/sources/${source}`)).body).toMatchObject({ state: 'finished', migration_cycle: 'cutovered' });
    expect((await cp.call('GET', `/v3/tasks/${task}`)).body.state).toBe('MIGRATE_SUCCESS');
    expect((await cp.call('PUT', `/v3/sources/${source}/changestate`, { migrationcycle: 'replicating' })).body.error_code).toBe('SMS.7728');
  });

  it('queues UPLOAD_LOG on request and keeps the uploaded archive under the data directory', async () => {
    const { source, task } = await sourceWithTask('vm-log');
    expect((await cp.call('POST', `/v3/tasks/${task}/collect-log`)).body.error_code).toBe('SMS.7717');
    await cp.call('POST', `/v3/tasks/${task}/action`, { operation: 'start' });
    expect((await cp.call('POST', `/v3/tasks/${task}/collect-log`)).status).toBe(200);
    expect((await cp.call('POST', `/v3/tasks/${task}/collect-log`)).body.error_code).toBe('SMS.7716');
    const cmds = (await cp.call('GET', `/v3/sources/${source}/commands`)).body.commands;
    expect(cmds.map((c: { command_name: string }) => c.command_name)).toEqual(['START', 'UPLOAD_LOG']);
    const archive = Buffer.from('not really a tarball, but bytes all the same');
    const r = await cp.call('POST', `/v3/tasks/${task}/log-archive`, undefined, { raw: archive, headers: { 'Content-Type': 'application/gzip' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.bytes).toBe(archive.length);
    const stored = join(cp.dataDir, r.body.file);
    expect(existsSync(stored)).toBe(true);
    expect(readFileSync(stored)).toEqual(archive);
    // A body other than the one signed, or no credentials at all: 401, and nothing kept.
    const swapped = await cp.call('POST', `/v3/tasks/${task}/log-archive`, undefined, { raw: archive, sendInstead: Buffer.from('something else entirely'), headers: { 'Content-Type': 'application/gzip' } });
    expect(swapped.status).toBe(401);
    expect(swapped.body.error_code).toBe('SMS.0202');
    const anonymous = await cp.call('POST', `/v3/tasks/${task}/log-archive`, undefined, { raw: archive, unsigned: true, headers: { 'Content-Type': 'application/gzip' } });
    expect(anonymous.body.error_code).toBe('SMS.6522');
    expect(readdirSync(join(cp.dataDir, 'logs', task))).toHaveLength(1);
    expect(readdirSync(join(cp.dataDir, 'tmp'))).toEqual([]);
  });
});
