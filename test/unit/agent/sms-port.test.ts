// The agent's control-plane port reads what real SMS may send (issue 17):
// enum values in either case, every task field it acts on, and a certkey
// reply without ferry's `receiver` extension (then the agent falls back to
// its config's receiver: section and the task's migration_ip).
import { describe, expect, it } from 'vitest';
import { smsPort } from '../../../src/agent/sms-port.js';
import type { ControlPlaneClient } from '../../../src/sms-client/client.js';

function portWith(replies: { task?: unknown; certkey?: unknown }) {
  const client = {
    getTask: async () => replies.task,
    getCertKey: async () => replies.certkey,
  } as unknown as ControlPlaneClient;
  return smsPort(client);
}

describe('agent SMS port', () => {
  it('reads a task whose enums come in the SDK\'s lower case, with the documented fields it needs', async () => {
    const port = portWith({
      task: {
        id: 't1',
        name: 'lower',
        type: 'migrate_block',
        state: 'running',
        source_server: { id: 's1' },
        migration_ip: '10.0.0.9',
        syncing: true,
        speed_limit: 30,
        is_need_consistency_check: true,
        target_server: { disks: [{ name: '/dev/vdb' }, { name: null }], volume_groups: [] },
      },
    });
    expect(await port.getTask('t1')).toEqual({
      id: 't1',
      name: 'lower',
      type: 'MIGRATE_BLOCK',
      state: 'RUNNING',
      sourceId: 's1',
      migrationIp: '10.0.0.9',
      syncing: true,
      speedLimit: 30,
      consistencyCheck: true,
      targetDisks: ['/dev/vdb', 'disk1'],
    });
  });

  it("hands on a target_server whose disks list partitions (a whole-server task) without the view's null fields", async () => {
    const disk = { id: 1, name: 'Disk 0', disk_id: null, relation_name: null, size: 100, used_size: 10, partition_style: 'GPT', physical_volumes: [{ id: 1001, index: 1, size: 50, uuid: null, free_size: null, file_system: 'ext4' }] };
    const task = await portWith({ task: { id: 't3', type: 'MIGRATE_FILE', target_server: { vm_id: 'v', name: 'n', ip: null, disks: [disk] } } }).getTask('t3');
    expect(task.targetServer).toEqual({ vm_id: 'v', name: 'n', disks: [{ id: 1, name: 'Disk 0', size: 100, used_size: 10, partition_style: 'GPT', physical_volumes: [{ id: 1001, index: 1, size: 50, file_system: 'ext4' }] }] });
  });

  it('refuses a task type it cannot run, naming it', async () => {
    await expect(portWith({ task: { id: 't2', type: 'MIGRATE_TAPE' } }).getTask('t2')).rejects.toThrow(/MIGRATE_TAPE/);
  });

  it('takes the receiver from ferry\'s certkey extension, and nothing from real SMS\'s certificates-only reply', async () => {
    const withReceiver = portWith({ certkey: { cert: 'C', private_key: 'K', receiver: { host: 'rx', port: 8900, fingerprint: 'ab', join_token: 'tok' } } });
    expect(await withReceiver.getCertKey('t1')).toEqual({ host: 'rx', port: 8900, fingerprint: 'ab', token: 'tok' });
    expect(await portWith({ certkey: { cert: 'C', private_key: 'K', ca: 'A' } }).getCertKey('t1')).toBeUndefined();
  });
});
