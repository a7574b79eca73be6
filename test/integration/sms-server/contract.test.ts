// Contract: every request example of the SMS v3 reference (sections 3.2,
// 4.1–4.3) replayed, signed by the official Huawei Cloud SDK signer, against
// `ferry control-plane` running as a child process over HTTPS; responses are
// checked against the documented shapes (the zod response schemas of
// src/sms/schemas) and error bodies against section 5.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certKeyResponseSchema,
  commandResponseSchema,
  errorBodySchema,
  sourceDetailsSchema,
  sourceListResponseSchema,
  sourceRegisteredSchema,
  speedLimitResponseSchema,
  taskCreatedSchema,
  taskDetailsSchema,
  taskListResponseSchema,
} from '../../../src/sms/schemas/index.js';
import { EXAMPLES, withIds, type RequestExample } from '../../fixtures/sms-request-examples.js';
import { removeDir, startLocalCp, type LocalCp, type Reply } from '../../helpers/control-plane.js';

let cp: LocalCp;
const ids: { source?: string; task?: string } = {};

function replay(ex: RequestExample, override: { source?: string; task?: string } = ids, body: unknown = ex.body): Promise<Reply> {
  return cp.call(ex.method, withIds(ex.path, override), body, { query: ex.query as Record<string, string> });
}

/** A documented 4xx body: error_code, error_msg, and for 400/403 error_param and details. */
function expectSmsError(r: Reply, status: number, code: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(errorBodySchema.parse(r.body).error_code).toBe(code);
  expect(typeof r.body.error_msg).toBe('string');
  if (status !== 401) {
    expect(r.body.details).toEqual([{ error_code: code, error_msg: r.body.error_msg }]);
    expect(Array.isArray(r.body.error_param)).toBe(true);
  }
}

beforeAll(async () => {
  cp = await startLocalCp();
});
afterAll(async () => {
  await cp?.stop();
  if (cp) removeDir(cp.dataDir);
});

describe('SMS v3 request examples against ferry control-plane', () => {
  it('serves HTTPS with the fingerprint it printed', () => {
    expect(cp.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(cp.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it('4.1.2 registers the example source', async () => {
    const r = await replay(EXAMPLES.register);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    ids.source = sourceRegisteredSchema.parse(r.body).id;
  });

  it('4.1.2 refuses a registration with a wrongly typed field, naming it', async () => {
    // Issue 17: every field of table 4-8 is optional (Mandatory: No), so a missing one is no longer refused
    // (sdk-contract.test.ts registers the example as printed); a wrong type still is.
    const r = await replay(EXAMPLES.register, ids, { ...EXAMPLES.register.body, cpu_quantity: 'two' });
    expectSmsError(r, 400, 'SMS.6011');
    expect(r.body.error_param.join(' ')).toMatch(/cpu_quantity/);
  });

  it('4.1.3 lists sources', async () => {
    const r = await replay(EXAMPLES.listSources);
    expect(r.status).toBe(200);
    const list = sourceListResponseSchema.parse(r.body);
    expect(list.count).toBe(1);
    expect(list.source_servers[0]).toMatchObject({ id: ids.source, state: 'waiting', migration_cycle: 'checking', connected: true, os_type: 'LINUX' });
  });

  it('4.1.8 shows the source with its disks numbered', async () => {
    const r = await replay(EXAMPLES.showSource);
    expect(r.status).toBe(200);
    const s = sourceDetailsSchema.parse(r.body);
    expect(s.hostname).toBe('host-192-168-136-xxx');
    expect(r.body.disks.map((d: { id: string }) => d.id)).toEqual(['0', '1', '2']);
    expect(r.body.disks[0].physical_volumes.map((p: { id: string }) => p.id)).toEqual(['0_0', '0_1', '0_2']);
    expect(r.body.btrfs_list[0].subvolumn).toHaveLength(23);
  });

  it('4.1.8 answers 400 SMS.7602 for an unknown source (section 5.1; issue 17: was 404)', async () => {
    expectSmsError(await replay(EXAMPLES.showSource, {}), 400, 'SMS.7602');
  });

  it('4.1.5 renames the source', async () => {
    const r = await replay(EXAMPLES.renameSource);
    expect(r.status).toBe(200);
    expect((await replay(EXAMPLES.showSource)).body.name).toBe('abcd');
    // The agent re-registering (POST with its id) updates the inventory, not the operator's name.
    const again = await replay(EXAMPLES.register, ids, { ...EXAMPLES.register.body, id: ids.source, cpu_quantity: 2 });
    expect(again.body).toEqual({ id: ids.source });
    expect((await replay(EXAMPLES.showSource)).body).toMatchObject({ name: 'abcd', cpu_quantity: 2 });
    expectSmsError(await replay(EXAMPLES.renameSource, ids, { name: 'bad name!' }), 400, 'SMS.6003');
    expectSmsError(await replay(EXAMPLES.renameSource, ids, { disks: [{ id: '7', adjust_size: 1 }] }), 400, 'SMS.0411');
  });

  it('4.1.10 replaces the disk information', async () => {
    const r = await replay(EXAMPLES.diskInfo);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const s = (await replay(EXAMPLES.showSource)).body;
    expect(s.volume_groups[0].logical_volumes[0].inode_size).toBe(256);
  });

  it('4.1.6 enforces the copystate/migrationcycle pairs of SMS.7728 (the example itself pairs WAITING with cutovered)', async () => {
    expectSmsError(await replay(EXAMPLES.changeState), 400, 'SMS.7728');
    expectSmsError(await replay(EXAMPLES.changeState, ids, {}), 400, 'SMS.7726');
    expectSmsError(await replay(EXAMPLES.changeState, ids, { migrationcycle: 'syncing' }), 400, 'SMS.7728');
    expectSmsError(await replay(EXAMPLES.changeState, ids, { copystate: '', migrationcycle: 'checking' }), 400, 'SMS.7727');
    expectSmsError(await replay(EXAMPLES.changeState, ids, { copystate: 'NOPE', migrationcycle: 'checking' }), 400, 'SMS.6011');
    const ok = await replay(EXAMPLES.changeState, ids, { copystate: 'WAITING', migrationcycle: 'checking' });
    expect(ok.status).toBe(200);
  });

  it('4.1.9 summarises sources by state', async () => {
    const r = await replay(EXAMPLES.overview);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ waiting: 1, unconfigured: 1, finished: 0, error: 0 });
  });

  it('4.1.1 lists failed sources', async () => {
    const r = await replay(EXAMPLES.listErrors);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ count: 0, migration_errors: [] });
  });

  it('4.2.1 creates the example task for the source (with a receiver, ferry extension)', async () => {
    const body = {
      ...EXAMPLES.createTask.body,
      source_server: { id: ids.source },
      receiver: { port: 8900, fingerprint: 'ab'.repeat(32), join_token: 'join-secret-0123456789' },
    };
    const r = await replay(EXAMPLES.createTask, ids, body);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    ids.task = taskCreatedSchema.parse(r.body).id;
    // One task per source; the OS must match; the source must exist.
    expectSmsError(await replay(EXAMPLES.createTask, ids, body), 400, 'SMS.6005');
    expectSmsError(await replay(EXAMPLES.createTask, ids, { ...EXAMPLES.createTask.body }), 400, 'SMS.7602');
  });

  it('4.2.2 lists tasks and 4.2.5 shows one', async () => {
    const list = await replay(EXAMPLES.listTasks);
    expect(list.status).toBe(200);
    const parsed = taskListResponseSchema.parse(list.body);
    expect(parsed.tasks.map((t) => t.id)).toEqual([ids.task]);
    const show = await replay(EXAMPLES.showTask);
    expect(show.status).toBe(200);
    const t = taskDetailsSchema.parse(show.body);
    expect(t).toMatchObject({ state: 'READY', type: 'MIGRATE_FILE', region_id: 'region_id', migration_ip: '192.168.0.1' });
    expect(JSON.stringify(show.body)).not.toContain('join-secret');
    expectSmsError(await replay(EXAMPLES.showTask, {}), 400, 'SMS.7703');
  });

  it('4.2.9/4.2.10 sets and reads time-segment speed limits', async () => {
    expect((await replay(EXAMPLES.getSpeedLimit)).body).toEqual({ speed_limit: [] });
    expect((await replay(EXAMPLES.setSpeedLimitOne)).status).toBe(200);
    expect(speedLimitResponseSchema.parse((await replay(EXAMPLES.getSpeedLimit)).body).speed_limit).toHaveLength(1);
    expect((await replay(EXAMPLES.setSpeedLimitThree)).status).toBe(200);
    const r = await replay(EXAMPLES.getSpeedLimit);
    expect(r.body.speed_limit).toEqual(EXAMPLES.setSpeedLimitThree.body.speed_limit);
    const overlap = { speed_limit: [{ start: '0:00', end: '9:00', speed: 1 }, { start: '8:00', end: '10:00', speed: 2 }] };
    expectSmsError(await replay(EXAMPLES.setSpeedLimitOne, ids, overlap), 400, 'SMS.9001');
    expectSmsError(await replay(EXAMPLES.setSpeedLimitOne, ids, { speed_limit: [{ start: '25:00', end: '26:00', speed: 1 }] }), 400, 'SMS.6011');
  });

  it('4.2.7 start queues START, 4.3.1 hands it out once, 4.3.2 takes the result', async () => {
    expectSmsError(await replay(EXAMPLES.actionCloneTest), 400, 'SMS.9001');
    expectSmsError(await replay(EXAMPLES.actionTest), 400, 'SMS.9001');
    expectSmsError(await replay(EXAMPLES.actionStop), 400, 'SMS.7714');
    expect((await replay(EXAMPLES.actionStart)).status).toBe(200);
    expectSmsError(await replay(EXAMPLES.actionStart), 400, 'SMS.7713');
    expect((await replay(EXAMPLES.showTask)).body.state).toBe('RUNNING');
    const cmd = await replay(EXAMPLES.getCommand);
    expect(cmd.status).toBe(200);
    expect(commandResponseSchema.parse(cmd.body)).toEqual({ command_name: 'START', command_param: { task_id: ids.task } });
    expect((await replay(EXAMPLES.getCommand)).body).toEqual({});
    expect((await replay(EXAMPLES.commandResult)).status).toBe(200);
    // The result was taken: a second one matches no delivered command.
    expectSmsError(await replay(EXAMPLES.commandResult), 400, 'SMS.6021');
    expectSmsError(await replay(EXAMPLES.commandResult, ids, { command_name: 'START', result: 'maybe', result_detail: {} }), 400, 'SMS.6022');
    expectSmsError(await replay(EXAMPLES.commandResult, ids, { command_name: 'START', result: 'success', result_detail: 'x' }), 400, 'SMS.6023');
    expectSmsError(await replay(EXAMPLES.commandResult, ids, { result: 'success', result_detail: {} }), 400, 'SMS.6020');
  });

  it('certkey gives the task\'s certificates and (ferry extension) its receiver to an authenticated caller', async () => {
    // Issue 17: the SDK's showCertKey contract, authorised by the caller's credentials (no X-Ferry-Source-Id, no 403).
    const path = `/v3/tasks/${ids.task}/certkey`;
    const r = await cp.call('GET', path);
    expect(r.status).toBe(200);
    const ck = certKeyResponseSchema.parse(r.body);
    expect(ck.cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(ck.receiver).toEqual({ host: '192.168.0.1', port: 8900, fingerprint: 'ab'.repeat(32), join_token: 'join-secret-0123456789' });
  });

  it('4.2.8 takes the example progress report and keeps it as history', async () => {
    expect((await replay(EXAMPLES.progress)).status).toBe(200);
    const bad = { ...EXAMPLES.progress.body, subtask_name: 'MAKE_COFFEE' };
    expectSmsError(await replay(EXAMPLES.progress, ids, bad), 400, 'SMS.6011');
    expectSmsError(await replay(EXAMPLES.progress, ids, { ...EXAMPLES.progress.body, progress: 101 }), 400, 'SMS.6011');
    const { process_trace: _p, ...missing } = EXAMPLES.progress.body;
    expectSmsError(await replay(EXAMPLES.progress, ids, missing), 400, 'SMS.6011');
    const t = (await replay(EXAMPLES.showTask)).body;
    expect(t.sub_tasks).toEqual([expect.objectContaining({ name: 'ATTACH_AGENT_IMAGE', progress: 100, user_op: 'REPLICATE' })]);
    expect(t.sub_tasks[0].end_date).toEqual(expect.any(Number));
    const h = await cp.call('GET', `/v3/tasks/${ids.task}/progress-history`);
    expect(h.status).toBe(200);
    expect(h.body.progress).toEqual([expect.objectContaining({ subtask_name: 'ATTACH_AGENT_IMAGE', progress: 100, replicatesize: 1000, totalsize: 100000 })]);
  });

  it('4.2.4 refuses to delete a running task whose agent is connected', async () => {
    expectSmsError(await replay(EXAMPLES.deleteTask), 400, 'SMS.7719');
  });

  it('4.1.7 refuses to delete a source with a running task, even forced', async () => {
    expectSmsError(await replay(EXAMPLES.deleteSource), 400, 'SMS.7601');
    expectSmsError(await cp.call('DELETE', `/v3/sources/${ids.source}`, undefined, { query: { force: true } }), 400, 'SMS.7601');
  });

  it('4.2.7 stop queues STOP; its success pauses the task; restart starts it again', async () => {
    expect((await replay(EXAMPLES.actionStop)).status).toBe(200);
    expect((await replay(EXAMPLES.showTask)).body.state).toBe('ABORTING');
    expect((await replay(EXAMPLES.getCommand)).body).toEqual({ command_name: 'STOP', command_param: { task_id: ids.task } });
    expect((await replay(EXAMPLES.commandResult, ids, { command_name: 'STOP', result: 'success', result_detail: {} })).status).toBe(200);
    expect((await replay(EXAMPLES.showTask)).body.state).toBe('ABORT');
    expect((await replay(EXAMPLES.showSource)).body.state).toBe('stopped');
    expect((await replay(EXAMPLES.actionRestart)).status).toBe(200);
    expect((await replay(EXAMPLES.showTask)).body).toMatchObject({ state: 'RUNNING', sub_tasks: [] });
    // Stopping before the agent fetched START withdraws the START instead.
    expect((await replay(EXAMPLES.actionStop)).status).toBe(200);
    expect((await replay(EXAMPLES.showTask)).body.state).toBe('ABORT');
    expect((await replay(EXAMPLES.getCommand)).body).toEqual({});
  });

  it('4.2.6 replays the update example on a Windows block task', async () => {
    const win = await cp.call('POST', '/v3/sources', {
      ip: '192.168.0.154', hostname: 'sms-win16', name: 'name-win16', os_type: 'WINDOWS', os_version: 'WINDOWS2016_64BIT',
      driver_files: true, system_services: true, account_rights: true, system_dir: 'C:\\Windows', firmware: 'BIOS', disks: [],
    });
    expect(win.status, JSON.stringify(win.body)).toBe(200);
    const created = await cp.call('POST', '/v3/tasks', {
      ...EXAMPLES.createTask.body, type: 'MIGRATE_BLOCK', os_type: 'WINDOWS', source_server: { id: win.body.id },
      target_server: { ...EXAMPLES.createTask.body.target_server, vm_id: 'win-target' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const r = await replay(EXAMPLES.updateTask, { task: created.body.id });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ id: created.body.id });
    const t = (await cp.call('GET', `/v3/tasks/${created.body.id}`)).body;
    expect(t).toMatchObject({ state: 'RUNNING', region_name: 'region name', type: 'MIGRATE_BLOCK' });
  });

  it('4.2.3 and 4.1.4 batch deletes are all-or-nothing', async () => {
    expectSmsError(await replay(EXAMPLES.batchDeleteTasks), 400, 'SMS.7703');
    expectSmsError(await replay(EXAMPLES.batchDeleteSources), 400, 'SMS.7602');
    expect((await replay(EXAMPLES.batchDeleteTasks, ids, { ids: [ids.task] })).status).toBe(200);
  });

  it('a deleted task leaves a DELETE command for the agent; 4.1.7 then deletes the source', async () => {
    expectSmsError(await replay(EXAMPLES.deleteTask), 400, 'SMS.7703');
    expect((await replay(EXAMPLES.getCommand)).body).toEqual({ command_name: 'DELETE', command_param: { task_id: ids.task } });
    const r = await replay(EXAMPLES.deleteSource);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expectSmsError(await replay(EXAMPLES.showSource), 400, 'SMS.7602');
  });

  it('3.2 issues a token for a configured user and accepts it', async () => {
    // The command-line pair has no users; a token request for an unknown user is a 401.
    const r = await cp.call('POST', '/v3/auth/tokens', EXAMPLES.token.body, { unsigned: true });
    expectSmsError(r, 401, 'SMS.6521');
  });

  it('answers unknown paths and methods with the error body', async () => {
    expectSmsError(await cp.call('GET', '/v3/nothing'), 404, 'SMS.9001');
    expectSmsError(await cp.call('PATCH', '/v3/tasks'), 405, 'SMS.9001');
    const notJson = await cp.call('POST', '/v3/tasks', undefined, { raw: Buffer.from('{not json') });
    expectSmsError(notJson, 400, 'SMS.6010');
  });
});
