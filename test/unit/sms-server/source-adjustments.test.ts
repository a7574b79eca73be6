// An operator's choices for a source (PUT /v3/sources/{id}, tables 4-43 to
// 4-46: leave a partition or logical volume out, resize one) are kept by the
// control plane, shown back by GET /v3/sources/{id}, and become the task's
// target_server the way `ferry tasks create` builds it: what is left out is
// not there, what is resized has its adjust_size as its size. Choices that
// cannot be carried out are refused when they are made.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/sms-server/api-error.js';
import { ControlPlaneService } from '../../../src/sms-server/service.js';
import { Store } from '../../../src/sms-server/store.js';
import { sourceDetailsSchema } from '../../../src/sms/schemas/index.js';
import { targetServerFromSource } from '../../../src/sms/target-server.js';
import { EXAMPLES } from '../../fixtures/sms-request-examples.js';

const GiB = 1024 ** 3;
const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function service(): Promise<ControlPlaneService> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-svc-adjust-'));
  dirs.push(dir);
  const store = await Store.open(join(dir, 'store'));
  stores.push(store);
  return new ControlPlaneService(store, { dataDir: dir });
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('accepted');
}

describe('PUT /v3/sources/{id} choices and the task created from them', () => {
  it('leaves out what need_migration:false names and resizes what adjust_size names', async () => {
    const svc = await service();
    // The document's source: /dev/vda = swap (vda1, 2 GiB), btrfs (vda2), xfs /home (vda3, 22.3 GiB, 32 MiB used); vg1 with lv1 (10 GiB).
    const { id } = await svc.registerSource(EXAMPLES.register.body);
    await svc.updateSource(id, {
      disks: [{ id: '0', adjust_size: 30 * GiB, physical_volumes: [{ id: '0_0', need_migration: false }, { id: '0_2', adjust_size: 10 * GiB }] }],
      volume_group_s: [{ id: 'vg1', logical_volumes: [{ id: '/dev/mapper/vg1-lv1', adjust_size: 5 * GiB }] }],
    });

    const shown = svc.showSource(id) as { disks: Array<Record<string, any>> };
    expect(shown.disks[0]!.physical_volumes.map((p: Record<string, unknown>) => [p.id, p.need_migration, p.adjust_size])).toEqual([
      ['0_0', false, 2153775104],
      ['0_1', true, 16862150656],
      ['0_2', true, 10 * GiB],
    ]);

    const target = targetServerFromSource(sourceDetailsSchema.parse(shown));
    const vda = target.disks[0]!;
    expect(vda.size).toBe(30 * GiB);
    // The swap partition is not in the target; /home has the new size and keeps its index.
    expect(vda.physical_volumes.map((p) => [p.name, p.index, p.size])).toEqual([
      ['/dev/vda2', 1, 16862150656],
      ['/dev/vda3', 2, 10 * GiB],
    ]);
    expect(vda.used_size).toBe(16862150656 + 10 * GiB);
    // An untouched disk keeps what the source reported.
    expect(target.disks[1]).toMatchObject({ name: '/dev/vdb', size: 21474836480, used_size: 21473787904 });
    expect(target.volume_groups![0]!.logical_volumes![0]).toMatchObject({ name: '/dev/mapper/vg1-lv1', size: 5 * GiB });

    const { id: task } = await svc.createTask({ ...EXAMPLES.createTask.body, source_server: { id }, target_server: target });
    const created = svc.showTask(task) as { target_server: { disks: Array<{ name: string; size: number; physical_volumes: Array<{ name: string; size: number }> }> } };
    expect(created.target_server.disks[0]).toMatchObject({ name: '/dev/vda', size: 30 * GiB });
    expect(created.target_server.disks[0]!.physical_volumes.map((p) => [p.name, p.size])).toEqual([
      ['/dev/vda2', 16862150656],
      ['/dev/vda3', 10 * GiB],
    ]);
  });

  it('leaves out a whole disk, volume group or logical volume', async () => {
    const svc = await service();
    const { id } = await svc.registerSource(EXAMPLES.register.body);
    await svc.updateSource(id, { disks: [{ id: '2', adjust_size: 0, need_migration: false }], volume_group_s: [{ id: 'vg1', logical_volumes: [{ id: '/dev/mapper/vg1-lv1', need_migration: false }] }] });
    const target = targetServerFromSource(sourceDetailsSchema.parse(svc.showSource(id)));
    expect(target.disks.map((d) => d.name)).toEqual(['/dev/vda', '/dev/vdb']);
    expect(target.volume_groups![0]!.logical_volumes).toEqual([]);
    await svc.updateSource(id, { volume_group_s: [{ id: 'vg1', need_migration: false }] });
    expect(targetServerFromSource(sourceDetailsSchema.parse(svc.showSource(id))).volume_groups).toEqual([]);
  });

  it('refuses a size below the used space (SMS.6538), a disk smaller than its partitions (SMS.6539) and volumes the source does not have', async () => {
    const svc = await service();
    const { id } = await svc.registerSource(EXAMPLES.register.body);
    expect(await refusal(svc.updateSource(id, { disks: [{ id: '0', adjust_size: 0, physical_volumes: [{ id: '0_2', adjust_size: 1024 }] }] }))).toEqual({
      code: 'SMS.6538',
      message: 'The new partition or logical volume size is less than the used space size: /dev/vda3 uses 33988608 bytes; adjust_size 1024 is smaller. Give it at least the used size plus a margin.',
    });
    expect(await refusal(svc.updateSource(id, { disks: [{ id: '0', adjust_size: 20 * GiB }] }))).toMatchObject({
      code: 'SMS.6539',
      message: expect.stringMatching(/^The disk space is less than the total size of all partitions: disk 0 \(\/dev\/vda\) adjust_size 21474836480 bytes, its migrated partitions take 42948624384 bytes/),
    });
    // Leaving the 22 GiB /home out makes 20 GiB enough.
    await svc.updateSource(id, { disks: [{ id: '0', adjust_size: 20 * GiB, physical_volumes: [{ id: '0_2', need_migration: false }] }] });
    expect(await refusal(svc.updateSource(id, { disks: [{ id: '0', adjust_size: 0, physical_volumes: [{ id: '1_0', adjust_size: GiB }] }] }))).toMatchObject({
      code: 'SMS.9001',
      message: 'Invalid parameters: partition 1_0 does not exist on disk 0 (its partitions are 0_0 … 0_2).',
    });
    expect(await refusal(svc.updateSource(id, { volume_group_s: [{ id: 'vg1', logical_volumes: [{ id: '/dev/mapper/vg1-lv1', adjust_size: 1 }] }] }))).toMatchObject({ code: 'SMS.6538' });
    expect(await refusal(svc.updateSource(id, { volume_group_s: [{ id: 'vg1', logical_volumes: [{ id: 'lv9', adjust_size: GiB }] }] }))).toMatchObject({ code: 'SMS.9001' });
  });

  it('refuses a task whose target_server cannot be laid out, before storing anything', async () => {
    const svc = await service();
    const { id } = await svc.registerSource(EXAMPLES.register.body);
    const ts = EXAMPLES.createTask.body.target_server;
    const missing = { ...EXAMPLES.createTask.body, source_server: { id }, target_server: { vm_id: 'v', name: 'n' } };
    expect(await refusal(svc.createTask(missing))).toMatchObject({ code: 'SMS.6033' });
    const shrunk = { ...EXAMPLES.createTask.body, source_server: { id }, target_server: { ...ts, disks: [{ ...ts.disks[0]!, physical_volumes: [{ ...ts.disks[0]!.physical_volumes[0]!, size: 1000 }] }] } };
    expect(await refusal(svc.createTask(shrunk))).toMatchObject({ code: 'SMS.6538' });
    expect(svc.listTasks(new URLSearchParams()).count).toBe(0);
  });
});
