// The agent against a control plane that speaks only the SDK's contract
// (issue 17): the task is created the way the SDK's createTask builds it,
// without ferry's `receiver` extension, so GET …/certkey answers certificates
// only (as real SMS does). The agent then takes the receiver's port,
// fingerprint and join token from its config's `receiver:` section and the
// host from the task's migration_ip, and the migration still completes. The
// SDK's collectLog (POST …/log {log_bucket}) then gets the agent's logs,
// uploaded to the ferry extension path.
import { appendFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readState } from '../../src/agent/state-store.js';
import { startAgentLab, type AgentLab } from '../helpers/agent-lab.js';
import { treeDigest } from '../helpers/file-tree.js';
import { sdkBody } from '../helpers/sdk-models.js';
import { until } from '../helpers/wait.js';

describe('ferry agent with a certificates-only certkey', () => {
  let lab: AgentLab | undefined;

  beforeAll(async () => {
    lab = await startAgentLab({ prefix: 'ferry-agent-sdk-', volume: { kind: 'file' } });
    mkdirSync(join(lab.source, 'etc'), { recursive: true });
    writeFileSync(join(lab.source, 'etc', 'hostname'), 'sdk-source\n');
    for (let i = 0; i < 20; i++) writeFileSync(join(lab.source, `f-${i}.txt`), `file ${i}\n`.repeat(100 * (i + 1)));
    const { port, fingerprint, token } = lab.recv.info;
    appendFileSync(lab.configPath, `receiver: {port: ${port}, fingerprint: "${fingerprint}", token: "${token}"}\n`);
    lab.startAgent();
  });

  afterAll(async () => {
    await lab?.stop();
  });

  it('migrates with the receiver from its config, then answers collectLog', async () => {
    const { cp, dataDir } = lab!;
    const sourceId = await until('registration', async () => (await readState(dataDir))?.sourceId);
    const created = await cp.call(
      'POST',
      '/v3/tasks',
      sdkBody('PostTask', {
        name: 'sdk-files',
        type: 'MIGRATE_FILE',
        os_type: 'LINUX',
        source_server: { id: sourceId },
        target_server: { vm_id: 'vm-sdk', name: 'target', disks: [] },
        migration_ip: '127.0.0.1',
        region_name: 'r',
        region_id: 'r',
        project_name: 'p',
        project_id: 'p',
      }),
    );
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const taskId: string = created.body.id;
    const ck = await cp.call('GET', `/v3/tasks/${taskId}/certkey`, undefined, { query: { enable_ca_cert: true } });
    expect(Object.keys(ck.body).sort()).toEqual(['ca', 'cert', 'private_key']);

    expect((await cp.call('POST', `/v3/tasks/${taskId}/action`, sdkBody('UpdateTaskStatusReq', { operation: 'start' }))).status).toBe(200);
    await until('MIGRATE_SUCCESS', async () => (await cp.call('GET', `/v3/tasks/${taskId}`)).body.state === 'MIGRATE_SUCCESS', 90_000);
    expect(treeDigest(lab!.target, { dirs: true })).toEqual(treeDigest(lab!.source, { dirs: true }));

    expect((await cp.call('POST', `/v3/tasks/${taskId}/log`, sdkBody('UploadLogRequestBody', { log_bucket: 'sdk-logs' }))).status).toBe(200);
    await until('log collected', async () => (await cp.call('GET', `/v3/tasks/${taskId}`)).body.log_collect_status === 'AGENT_COLLECT_SUCCESS');
    expect(readdirSync(join(lab!.dir, 'cp', 'logs', taskId))).toHaveLength(1);
  });
});
