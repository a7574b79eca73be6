// Contract with the official SDK (issue 17): every documented operation
// ferry implements, called the way huaweicloud-sdk-nodejs-v3's generated SMS
// client calls it — its paths, query parameters and request models' field
// names (each body is checked against the model by sdkBody) — signed by the
// SDK core's AK/SK signer, against `ferry control-plane` running as a child
// process over HTTPS. Each reply is checked against the SDK response model's
// field names and types (sdkReplyProblems), error cases included. The
// models are the SDK's own field lists: test/fixtures/sms-sdk-models.ts.
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES } from '../../fixtures/sms-request-examples.js';
import { removeDir, startLocalCp, type LocalCp, type Reply } from '../../helpers/control-plane.js';
import { sdkBody, sdkReplyProblems, type ReplyCheck } from '../../helpers/sdk-models.js';

/**
 * SDK response fields the document's reply tables do not list (tables 4-21
 * to 4-31, 4-63 to 4-77, 4-111 to 4-118, 4-133 to 4-141): ferry need not
 * send them. Every other field of the SDK models must be in each reply.
 */
const CHECK: ReplyCheck = {
  notDocumented: {
    SourceServersResponseBody: ['start_type'],
    ShowServerResponse: ['start_type'],
    TaskByServerSources: ['subtask_info'],
    TaskByServerSource: ['subtask_info', 'log_collect_status'],
    TasksResponseBody: ['need_migration_test', 'subtask_info'],
    ShowTaskResponse: ['need_migration_test', 'subtask_info'],
    ShowOverviewResponse: ['skipping'],
    // Real SMS also hands out the target's certificates; ferry's targets are its receivers (fingerprint-pinned).
    ShowCertKeyResponse: ['target_mgmt_cert', 'target_mgmt_private_key', 'target_data_cert', 'target_data_private_key'],
  },
  onlyWhenSet: {
    // Table 4-192: `bucket` belongs to UPLOAD_LOG; other commands carry only their task id (what agents match on).
    CommandParam: ['bucket'],
  },
  typeExceptions: {
    // Table 4-135 leaves btrfs_list's items untyped; the SDK says string, ferry sends the source's Btrfs objects.
    'target_server.btrfs_list[]': 'Btrfs file systems as objects (table 4-11)',
  },
};

let cp: LocalCp;
const ids: { source?: string; task?: string; other?: string } = {};

function expectReply(r: Reply, model: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(sdkReplyProblems(r.body, model, CHECK)).toEqual([]);
}

/** The error body of section 5.1 with HTTP 400, as the document's table lists every SMS code. */
function expect400(r: Reply, code: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(400);
  expect(r.body).toMatchObject({ error_code: code, error_msg: expect.any(String), error_param: expect.any(Array) });
}

const register = EXAMPLES.register.body;
/** The 4.1.2 example as the document prints it: no hostname, raw_devices or has_tc (and no virtualization_type, which the SDK lacks). */
const { hostname: _h, raw_devices: _r, has_tc: _t, virtualization_type: _v, ...printedExample } = register;

beforeAll(async () => {
  cp = await startLocalCp();
});
afterAll(async () => {
  await cp?.stop();
  if (cp) removeDir(cp.dataDir);
});

describe('the official SDK\'s SMS v3 client against ferry control-plane', () => {
  it('registerServer: the 4.1.2 example as printed (no raw_devices) registers; a wrongly typed field is 400 SMS.6011', async () => {
    const r = await cp.call('POST', '/v3/sources', sdkBody('PostSourceServerBody', printedExample));
    expectReply(r, 'RegisterServerResponse');
    ids.source = r.body.id;
    const other = await cp.call('POST', '/v3/sources', sdkBody('PostSourceServerBody', { ip: '10.0.0.7', name: 'bare', os_type: 'LINUX' }));
    expectReply(other, 'RegisterServerResponse');
    ids.other = other.body.id;
    const bad = await cp.call('POST', '/v3/sources', sdkBody('PostSourceServerBody', { ...printedExample, memory: 'lots' }));
    expect400(bad, 'SMS.6011');
    expect(bad.body.error_param.join(' ')).toMatch(/memory/);
  });

  it('listServers: limit=0 means the default page of 200; every documented field is there', async () => {
    const r = await cp.call('GET', '/v3/sources', undefined, { query: { limit: 0, offset: 0 } });
    expectReply(r, 'ListServersResponse');
    expect(r.body.count).toBe(2);
    expect(r.body.source_servers).toHaveLength(2);
    const s = r.body.source_servers.find((x: { id: string }) => x.id === ids.source);
    expect(s).toMatchObject({ checks: [], state: 'waiting', migration_cycle: 'checking' });
    expect(s.init_target_server.disks.map((d: { name: string }) => d.name)).toEqual(['/dev/vda', '/dev/vdb', '/dev/vdc']);
    const filtered = await cp.call('GET', '/v3/sources', undefined, { query: { state: 'waiting', migration_cycle: 'checking', connected: true, limit: 1 } });
    expectReply(filtered, 'ListServersResponse');
    expect(filtered.body.source_servers).toHaveLength(1);
  });

  it('showServer: every documented field; an unknown source is 400 SMS.7602', async () => {
    const r = await cp.call('GET', `/v3/sources/${ids.source}`);
    expectReply(r, 'ShowServerResponse');
    expect(r.body.init_target_server.volume_groups.map((v: { name: string }) => v.name)).toEqual(register.volume_groups.map((v) => v.name));
    expect400(await cp.call('GET', '/v3/sources/no-such-source'), 'SMS.7602');
  });

  it('updateServerName: volume_groups (the SDK key) and volume_group_s (the document) both apply; unknown keys are refused by name', async () => {
    const vg = register.volume_groups[0]!.name!;
    const sdk = sdkBody('PutSourceServerBody', { name: 'renamed', volume_groups: [{ id: vg, need_migration: false, adjust_size: 0 }] });
    expect((await cp.call('PUT', `/v3/sources/${ids.source}`, sdk)).status).toBe(200);
    let s = (await cp.call('GET', `/v3/sources/${ids.source}`)).body;
    expect(s.name).toBe('renamed');
    expect(s.volume_groups.find((v: { id: string }) => v.id === vg).need_migration).toBe(false);
    expect((await cp.call('PUT', `/v3/sources/${ids.source}`, { volume_group_s: [{ id: vg, need_migration: true }] })).status).toBe(200);
    s = (await cp.call('GET', `/v3/sources/${ids.source}`)).body;
    expect(s.volume_groups.find((v: { id: string }) => v.id === vg).need_migration).toBe(true);

    const unknown = await cp.call('PUT', `/v3/sources/${ids.source}`, { name: 'again', volume_groupz: [], disks: [{ id: '0', adjust_size: 1, size: 2 }] });
    expect400(unknown, 'SMS.6011');
    expect(unknown.body.error_param.join(' ')).toMatch(/volume_groupz/);
    expect(unknown.body.error_param.join(' ')).toMatch(/disks\.0.*size/);
    expect400(await cp.call('PUT', `/v3/sources/${ids.source}`, { volume_groups: [], volume_group_s: [] }), 'SMS.6011');
    // Choices for volumes that do not exist would be kept and never shown: refused, naming them.
    const lv = register.volume_groups[0]!.logical_volumes![0]!.name!;
    expect400(await cp.call('PUT', `/v3/sources/${ids.source}`, { disks: [{ id: '0', adjust_size: 0, physical_volumes: [{ id: '0_9', need_migration: false }] }] }), 'SMS.9001');
    expect400(await cp.call('PUT', `/v3/sources/${ids.source}`, { volume_groups: [{ id: vg, logical_volumes: [{ id: 'no-such-lv' }] }] }), 'SMS.9001');
    const pvAndLv = sdkBody('PutSourceServerBody', {
      disks: [{ id: '0', adjust_size: 0, physical_volumes: [{ id: '0_1', need_migration: false }] }],
      volume_groups: [{ id: vg, logical_volumes: [{ id: lv, need_migration: false }] }],
    });
    expect((await cp.call('PUT', `/v3/sources/${ids.source}`, pvAndLv)).status).toBe(200);
    s = (await cp.call('GET', `/v3/sources/${ids.source}`)).body;
    expect(s.disks[0].physical_volumes[1]).toMatchObject({ id: '0_1', need_migration: false });
    expect(s.volume_groups.find((v: { id: string }) => v.id === vg).logical_volumes.find((l: { id: string }) => l.id === lv).need_migration).toBe(false);
    expect((await cp.call('GET', `/v3/sources/${ids.source}`)).body.name).toBe('renamed');
    expect400(await cp.call('PUT', '/v3/sources/no-such-source', sdkBody('PutSourceServerBody', { name: 'x' })), 'SMS.7602');
  });

  it('updateCopyState: the SDK\'s lower-case enums and the document\'s upper case give one canonical state', async () => {
    const lower = sdkBody('PutCopyStateReq', { copystate: 'unavailable', migrationcycle: 'checking' });
    expect((await cp.call('PUT', `/v3/sources/${ids.other}/changestate`, lower)).status).toBe(200);
    expect((await cp.call('GET', `/v3/sources/${ids.other}`)).body).toMatchObject({ state: 'unavailable', migration_cycle: 'checking' });
    expect((await cp.call('PUT', `/v3/sources/${ids.other}/changestate`, { copystate: 'WAITING', migrationcycle: 'CHECKING' })).status).toBe(200);
    expect((await cp.call('GET', `/v3/sources/${ids.other}`)).body).toMatchObject({ state: 'waiting', migration_cycle: 'checking' });
    // A value of the SDK's enum that the document does not list, and a pair SMS.7728 forbids.
    expect400(await cp.call('PUT', `/v3/sources/${ids.other}/changestate`, { copystate: 'skipping' }), 'SMS.6011');
    expect400(await cp.call('PUT', `/v3/sources/${ids.other}/changestate`, { copystate: 'finished', migrationcycle: 'checking' }), 'SMS.7728');
    expect400(await cp.call('PUT', '/v3/sources/no-such-source/changestate', lower), 'SMS.7602');
  });

  it('updateDiskInfo, showOverview and listErrorServers', async () => {
    const body = sdkBody('PutDiskInfoReq', { disks: register.disks, volumegroups: register.volume_groups, btrfs_list: register.btrfs_list });
    expect((await cp.call('PUT', `/v3/sources/${ids.source}/diskinfo`, body)).status).toBe(200);
    expect400(await cp.call('PUT', '/v3/sources/no-such-source/diskinfo', body), 'SMS.7602');
    expectReply(await cp.call('GET', '/v3/sources/overview'), 'ShowOverviewResponse');
    expectReply(await cp.call('GET', '/v3/errors', undefined, { query: { limit: 10, offset: 0 } }), 'ListErrorServersResponse');
  });

  it('createTask with the SDK\'s target_server.volume_groups; an unknown source is 400 SMS.7602', async () => {
    const created = EXAMPLES.createTask.body;
    const body = sdkBody('PostTask', {
      name: 'sdk-task',
      type: 'MIGRATE_FILE',
      os_type: 'LINUX',
      source_server: { id: ids.source! },
      // A second disk with only the mandatory fields of table 4-102: the reply still carries every field of table 4-136.
      target_server: { vm_id: 'sdk-vm', name: 'sdk-target', disks: [...created.target_server.disks, { name: '/dev/vdb', size: 21474836480, used_size: 0, physical_volumes: [] }], volume_groups: [] },
      migration_ip: '192.168.0.1',
      region_name: 'r',
      region_id: 'r',
      project_name: 'p',
      project_id: 'p',
      syncing: true,
      is_need_consistency_check: true,
      speed_limit: 100,
    });
    const r = await cp.call('POST', '/v3/tasks', body);
    expectReply(r, 'CreateTaskResponse');
    ids.task = r.body.id;
    expect400(await cp.call('POST', '/v3/tasks', { ...body, source_server: { id: 'no-such-source' }, target_server: { ...body.target_server, vm_id: 'other-vm' } }), 'SMS.7602');
  });

  it('showTask and listTasks: every documented field, with the target disk fields filled from the source', async () => {
    const r = await cp.call('GET', `/v3/tasks/${ids.task}`);
    expectReply(r, 'ShowTaskResponse');
    expect(r.body).toMatchObject({ log_collect_status: 'INIT', clone_server: null, network_check_info: null, special_config: [], target_snapshot_id: null, syncing: true });
    // Table 4-133 spells it estimate_completion_time, the SDK estimate_complete_time: both are there.
    expect(r.body).toMatchObject({ estimate_completion_time: null, estimate_complete_time: null });
    expect(r.body.target_server).toMatchObject({ system_dir: null, image_disk_id: null, cutovered_snapshot_ids: null });
    const disk = r.body.target_server.disks[0];
    expect(disk).toMatchObject({ disk_index: '0', os_disk: false, partition_style: 'MBR', relation_name: '/dev/vda' });
    expect(disk.physical_volumes[0]).toMatchObject({ relation_name: '/dev/vda1', free_size: 42947575808 - 5346484224 });
    expect(r.body.target_server.disks[1]).toMatchObject({ disk_index: '1', device_use: null, relation_name: '/dev/vdb', partition_style: 'MBR' });
    // Neither the task body nor the example's source partition knows the uuid: the document's null.
    expect(disk.physical_volumes[0].uuid).toBeNull();
    expect400(await cp.call('GET', '/v3/tasks/no-such-task'), 'SMS.7703');

    const list = await cp.call('GET', '/v3/tasks', undefined, { query: { source_server_id: ids.source!, limit: 10, offset: 0 } });
    expectReply(list, 'ListTasksResponse');
    expect(list.body.tasks.map((t: { id: string }) => t.id)).toEqual([ids.task]);
    // The source now shows its task.
    expectReply(await cp.call('GET', `/v3/sources/${ids.source}`), 'ShowServerResponse');
    expectReply(await cp.call('GET', '/v3/sources'), 'ListServersResponse');
  });

  it('updateTask answers the task id; an unknown task is 400 SMS.7703', async () => {
    const body = sdkBody('PutTaskReq', { name: 'sdk-task-renamed', speed_limit: 50, migration_ip: '192.168.0.2' });
    const r = await cp.call('PUT', `/v3/tasks/${ids.task}`, body);
    expectReply(r, 'UpdateTaskResponse');
    expect(r.body.id).toBe(ids.task);
    expect((await cp.call('GET', `/v3/tasks/${ids.task}`)).body).toMatchObject({ name: 'sdk-task-renamed', speed_limit: 50, migration_ip: '192.168.0.2' });
    expect400(await cp.call('PUT', '/v3/tasks/no-such-task', body), 'SMS.7703');
  });

  it('showCertKey: a certificate for the task\'s source issued by the control plane\'s CA, the CA with enable_ca_cert', async () => {
    const r = await cp.call('GET', `/v3/tasks/${ids.task}/certkey`, undefined, { query: { enable_ca_cert: true } });
    expectReply(r, 'ShowCertKeyResponse');
    const cert = new X509Certificate(r.body.cert);
    const ca = new X509Certificate(r.body.ca);
    expect(ca.ca).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subject).toBe(`CN=${ids.source}`);
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(r.body.private_key))).toBe(true);
    // The task was created without a receiver: no ferry extension field either.
    expect(r.body.receiver).toBeUndefined();
    const plain = await cp.call('GET', `/v3/tasks/${ids.task}/certkey`, undefined, { query: { enable_ca_cert: false } });
    expect(plain.status).toBe(200);
    expect(plain.body.ca).toBeUndefined();
    expect(new X509Certificate(plain.body.cert).checkIssued(ca)).toBe(true);
    expect400(await cp.call('GET', '/v3/tasks/no-such-task/certkey'), 'SMS.7703');
    expect400(await cp.call('GET', `/v3/tasks/${ids.task}/certkey`, undefined, { query: { enable_ca_cert: 'maybe' } }), 'SMS.9001');
  });

  it('updateTaskStatus, showCommand, updateCommandResult, updateTaskSpeed and the speed limits', async () => {
    expect400(await cp.call('POST', `/v3/tasks/${ids.task}/action`, sdkBody('UpdateTaskStatusReq', { operation: 'stop' })), 'SMS.7714');
    expect((await cp.call('POST', `/v3/tasks/${ids.task}/action`, sdkBody('UpdateTaskStatusReq', { operation: 'start' }))).status).toBe(200);
    const cmd = await cp.call('GET', `/v3/sources/${ids.source}/command`);
    expectReply(cmd, 'ShowCommandResponse');
    expect(cmd.body).toEqual({ command_name: 'START', command_param: { task_id: ids.task } });
    const result = sdkBody('CommandBody', { command_name: 'START', result: 'success', result_detail: { msg: 'accepted' } });
    expect((await cp.call('POST', `/v3/sources/${ids.source}/command_result`, result)).status).toBe(200);
    expect400(await cp.call('POST', `/v3/sources/${ids.source}/command_result`, result), 'SMS.6021');

    const progress = sdkBody('UpdateTaskSpeedReq', { subtask_name: 'MIGRATE_LINUX_FILE', progress: 30, replicatesize: 300, totalsize: 1000, process_trace: 'disk0', migrate_speed: 12.5 });
    expect((await cp.call('PUT', `/v3/tasks/${ids.task}/progress`, progress)).status).toBe(200);
    expect400(await cp.call('PUT', `/v3/tasks/${ids.task}/progress`, { ...progress, progress: 101 }), 'SMS.6011');
    expect400(await cp.call('PUT', '/v3/tasks/no-such-task/progress', progress), 'SMS.7703');
    expectReply(await cp.call('GET', `/v3/tasks/${ids.task}`), 'ShowTaskResponse');

    const limits = sdkBody('SpeedLimit', { speed_limit: [{ start: '0:00', end: '8:00', speed: 20, over_speed_threshold: 10 }] });
    expect((await cp.call('POST', `/v3/tasks/${ids.task}/speed-limit`, limits)).status).toBe(200);
    const got = await cp.call('GET', `/v3/tasks/${ids.task}/speed-limit`);
    expectReply(got, 'ShowsSpeedLimitsResponse');
    expect(got.body.speed_limit).toEqual(limits.speed_limit);
    expect400(await cp.call('GET', '/v3/tasks/no-such-task/speed-limit'), 'SMS.7703');
  });

  it('collectLog with {log_bucket} queues UPLOAD_LOG for the agent with the bucket; log_collect_status follows it', async () => {
    const body = sdkBody('UploadLogRequestBody', { log_bucket: 'ferry-logs' });
    expect400(await cp.call('POST', '/v3/tasks/no-such-task/log', body), 'SMS.7703');
    expect((await cp.call('POST', `/v3/tasks/${ids.task}/log`, body)).status).toBe(200);
    expect((await cp.call('GET', `/v3/tasks/${ids.task}`)).body.log_collect_status).toBe('TELL_AGENT_TO_COLLECT');
    expect400(await cp.call('POST', `/v3/tasks/${ids.task}/log`, body), 'SMS.7716');
    const cmd = await cp.call('GET', `/v3/sources/${ids.source}/command`);
    expectReply(cmd, 'ShowCommandResponse');
    expect(cmd.body).toEqual({ command_name: 'UPLOAD_LOG', command_param: { task_id: ids.task, bucket: 'ferry-logs' } });
    expect((await cp.call('GET', `/v3/tasks/${ids.task}`)).body.log_collect_status).toBe('WAIT_AGENT_COLLECT_ACK');
    // The agent uploads to the ferry extension path, then reports the command's result.
    const archive = Buffer.from('log archive bytes');
    const up = await cp.call('POST', `/v3/tasks/${ids.task}/log-archive`, undefined, { raw: archive, headers: { 'Content-Type': 'application/octet-stream' } });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    expect((await cp.call('POST', `/v3/sources/${ids.source}/command_result`, { command_name: 'UPLOAD_LOG', result: 'success', result_detail: {} })).status).toBe(200);
    const t = await cp.call('GET', `/v3/tasks/${ids.task}`);
    expect(t.body.log_collect_status).toBe('AGENT_COLLECT_SUCCESS');
    const src = await cp.call('GET', `/v3/sources/${ids.source}`);
    expectReply(src, 'ShowServerResponse');
    expect(src.body.current_task).toMatchObject({ log_collect_status: 'AGENT_COLLECT_SUCCESS', log_bucket: 'ferry-logs', log_upload_time: up.body.received_at });
    // A task that never started has no logs to collect.
    const idle = await cp.call('POST', '/v3/tasks', { ...EXAMPLES.createTask.body, source_server: { id: ids.other }, target_server: { ...EXAMPLES.createTask.body.target_server, vm_id: 'idle-vm' } });
    expect(idle.status, JSON.stringify(idle.body)).toBe(200);
    expect400(await cp.call('POST', `/v3/tasks/${idle.body.id}/log`, body), 'SMS.7717');
    expect400(await cp.call('POST', `/v3/tasks/${idle.body.id}/log`, { log_bucket: 7 }), 'SMS.6011');
  });

  it('deleteTask, deleteTasks, deleteServer and deleteServers: unknown ids are 400, running tasks are refused', async () => {
    expect400(await cp.call('DELETE', '/v3/tasks/no-such-task'), 'SMS.7703');
    expect400(await cp.call('POST', '/v3/tasks/delete', sdkBody('DeleteTasksReq', { ids: ['no-such-task'] })), 'SMS.7703');
    expect400(await cp.call('DELETE', `/v3/tasks/${ids.task}`), 'SMS.7719');
    expect400(await cp.call('DELETE', '/v3/sources/no-such-source'), 'SMS.7602');
    expect400(await cp.call('POST', '/v3/sources/delete', sdkBody('DeleteIds', { ids: ['no-such-source'] })), 'SMS.7602');
    expect400(await cp.call('DELETE', `/v3/sources/${ids.source}`), 'SMS.7601');
    expect((await cp.call('POST', `/v3/tasks/${ids.task}/action`, { operation: 'stop' })).status).toBe(200);
    expect((await cp.call('GET', `/v3/sources/${ids.source}/command`)).body.command_name).toBe('STOP');
    expect((await cp.call('POST', `/v3/sources/${ids.source}/command_result`, { command_name: 'STOP', result: 'success', result_detail: {} })).status).toBe(200);
    expect((await cp.call('POST', '/v3/tasks/delete', sdkBody('DeleteTasksReq', { ids: [ids.task!] }))).status).toBe(200);
    expect((await cp.call('DELETE', `/v3/sources/${ids.source}`)).status).toBe(200);
    expect400(await cp.call('GET', `/v3/sources/${ids.source}`), 'SMS.7602');
  });
});
