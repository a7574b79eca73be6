// The control-plane client against `ferry control-plane` running as a child
// process over HTTPS (certificate pinned by the fingerprint it prints): the
// agent's whole conversation and the operator's, signed with AK/SK, and token
// authentication with a user's password.

import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlaneClient, SmsApiError } from '../../../src/sms-client/client.js';
import type { DiskInfo, SourceBody, TaskCreate } from '../../../src/sms/schemas/index.js';
import { EXAMPLES } from '../../fixtures/sms-request-examples.js';
import { removeDir, startLocalCp, TEST_AK, TEST_SK, type LocalCp } from '../../helpers/control-plane.js';

let cp: LocalCp;
let credDir: string;
const clients: ControlPlaneClient[] = [];

function client(auth: ConstructorParameters<typeof ControlPlaneClient>[0]['auth']): ControlPlaneClient {
  const c = new ControlPlaneClient({ endpoint: cp.url, auth, fingerprint: cp.fingerprint!, retry: { max_attempts: 2, base_delay_ms: 1 } });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  credDir = mkdtempSync(join(tmpdir(), 'ferry-cpclient-cred-'));
  const credFile = join(credDir, 'credentials.json');
  writeFileSync(credFile, JSON.stringify({ access_keys: [{ ak: TEST_AK, sk: TEST_SK }], users: [{ name: 'ops', password: 'ops-password-1', domain: 'lab' }] }));
  chmodSync(credFile, 0o600);
  cp = await startLocalCp({ credentials: credFile });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await cp?.stop();
  if (cp) removeDir(cp.dataDir);
  if (credDir) removeDir(credDir);
});

describe('client against ferry control-plane', () => {
  it('runs the agent and operator conversation with AK/SK', async () => {
    const c = client({ type: 'aksk', ak: TEST_AK, sk: TEST_SK });

    const { id: sourceId } = await c.registerSource(EXAMPLES.register.body as SourceBody);
    expect(sourceId).toBeTruthy();
    const list = await c.listSources({ limit: 10 });
    expect(list.source_servers.map((s) => s.id)).toContain(sourceId);
    await c.changeState(sourceId, { copystate: 'WAITING', migrationcycle: 'checking' });
    await c.updateDiskInfo(sourceId, EXAMPLES.diskInfo.body as DiskInfo);
    await c.updateSource(sourceId, { name: 'web-01' });
    expect((await c.getSource(sourceId)).name).toBe('web-01');

    const body = {
      ...(EXAMPLES.createTask.body as unknown as TaskCreate),
      source_server: { id: sourceId },
      receiver: { port: 8900, fingerprint: 'ab'.repeat(32), join_token: 'join-SECRET-token-1' },
    };
    const { id: taskId } = await c.createTask(body);
    expect((await c.getTask(taskId)).id).toBe(taskId);
    expect((await c.listTasks({ source_server_id: sourceId })).tasks.map((t) => t.id)).toContain(taskId);

    await c.taskAction(taskId, { operation: 'start' });
    const cmd = await c.getCommand(sourceId);
    expect(cmd).toMatchObject({ command_name: 'START', command_param: { task_id: taskId } });
    await c.reportCommandResult(sourceId, { command_name: 'START', result: 'success', result_detail: { msg: 'accepted' } });

    await c.reportProgress(taskId, { subtask_name: 'MIGRATE_LINUX_FILE', progress: 40, replicatesize: 400, totalsize: 1000, process_trace: 'disk0 40%' });
    await c.setSpeedLimit(taskId, { speed_limit: [{ start: '0:00', end: '8:00', speed: 20 }] });
    const limits = await c.getSpeedLimit(taskId);
    expect(limits.speed_limit[0]).toMatchObject({ speed: 20 });

    // showCertKey is authorised by the caller's credentials (issue 17: no more X-Ferry-Source-Id / 403).
    const ck = await c.getCertKey(taskId, { enableCaCert: true });
    expect(ck.receiver).toMatchObject({ host: '192.168.0.1', port: 8900, join_token: 'join-SECRET-token-1' });
    expect(ck.cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(ck.private_key).toMatch(/PRIVATE KEY-----/);
    expect(ck.ca).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect((await c.getCertKey(taskId)).ca).toBeUndefined();

    await c.uploadLog(taskId, Buffer.from('a log archive'));

    await c.taskAction(taskId, { operation: 'stop' });
    expect(await c.getCommand(sourceId)).toMatchObject({ command_name: 'STOP' });
    await c.reportCommandResult(sourceId, { command_name: 'STOP', result: 'success', result_detail: { msg: 'stopped' } });
    expect(await c.getCommand(sourceId)).toEqual({});

    const refused = await c.deleteSource(sourceId).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SmsApiError);
    expect((refused as SmsApiError).status).toBeGreaterThanOrEqual(400);
    await c.deleteSource(sourceId, { force: true });
    const gone = (await c.getTask(taskId).catch((e: unknown) => e)) as SmsApiError;
    expect(gone).toBeInstanceOf(SmsApiError);
    // Section 5.1: SMS.7703 is HTTP 400 (issue 17; it was 404).
    expect(gone.status).toBe(400);
    expect(gone.errorCode).toBe('SMS.7703');
    expect(gone.errorCode).toMatch(/^SMS\./);
  });

  it('obtains a token with a password and uses it; a bad token is a typed 401', async () => {
    const ops = client({ type: 'password', user: 'ops', password: 'ops-password-1', domain: 'lab' });
    await expect(ops.listTasks()).resolves.toMatchObject({ count: expect.any(Number) });

    const bad = await client({ type: 'token', token: 'not-a-real-token' }).listTasks().catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(SmsApiError);
    expect((bad as SmsApiError).status).toBe(401);
    expect(JSON.stringify(bad)).not.toContain('not-a-real-token');

    const wrongPw = await client({ type: 'password', user: 'ops', password: 'wrong-password', domain: 'lab' }).listTasks().catch((e: unknown) => e);
    expect(wrongPw).toBeInstanceOf(SmsApiError);
    expect((wrongPw as SmsApiError).status).toBe(401);
    expect(JSON.stringify(wrongPw) + (wrongPw as Error).message).not.toContain('wrong-password');
  });
});
