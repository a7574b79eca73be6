// The SMS v3 schemas accept the document's own examples, tolerate unknown
// response fields, and reject a missing or wrongly typed field by name.

import { describe, expect, it } from 'vitest';
import {
  changeStateSchema,
  clampProgressReport,
  commandResponseSchema,
  commandResultSchema,
  describeIssues,
  diskInfoSchema,
  errorBodySchema,
  passwordTokenRequest,
  progressReportSchema,
  sourceListResponseSchema,
  speedLimitResponseSchema,
  speedLimitSetSchema,
  taskActionSchema,
  taskCreateSchema,
  taskDetailsSchema,
  tokenRequestSchema,
  tokenResponseSchema,
} from '../../../src/sms/schemas/index.js';
import { smsMessage } from '../../../src/errors/sms-codes.js';

describe('SMS v3 request schemas', () => {
  it('accept the documented request examples', () => {
    expect(changeStateSchema.parse({ copystate: 'WAITING', migrationcycle: 'cutovered' })).toEqual({
      copystate: 'WAITING',
      migrationcycle: 'cutovered',
    });
    expect(
      progressReportSchema.safeParse({ subtask_name: 'ATTACH_AGENT_IMAGE', progress: 100, replicatesize: 1000, totalsize: 100000, process_trace: '' })
        .success,
    ).toBe(true);
    expect(
      speedLimitSetSchema.safeParse({
        speed_limit: [
          { start: '0:00', end: '8:00', speed: 20 },
          { start: '8:00', end: '15:00', speed: 50 },
          { start: '15:00', end: '23:59', speed: 25, over_speed_threshold: 50.0 },
        ],
      }).success,
    ).toBe(true);
    for (const operation of ['start', 'stop', 'restart', 'test', 'sync']) {
      expect(taskActionSchema.safeParse({ operation }).success).toBe(true);
    }
    expect(commandResultSchema.safeParse({ command_name: 'START', result: 'success', result_detail: { msg: 'xxx' } }).success).toBe(true);
    const task = taskCreateSchema.safeParse({
      name: 'MigrationTask',
      type: 'MIGRATE_FILE',
      os_type: 'LINUX',
      start_target_server: true,
      use_public_ip: true,
      migration_ip: '192.168.0.1',
      region_name: 'region_name',
      region_id: 'region_id',
      project_name: 'project_name',
      project_id: 'xxxxxxxxxxxxxxxxxxxxxxxx00000001',
      source_server: { id: 'xxxxxxx-xxxx-xxxx-xxxx-xxxxxxxx0001' },
      target_server: {
        vm_id: 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxx0001',
        name: 'Auto-tar-name',
        disks: [
          {
            name: '/dev/vda',
            disk_id: 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxx0001',
            size: 42949672960,
            used_size: 429496,
            device_use: 'BOOT',
            physical_volumes: [
              { uuid: null, index: 0, name: '/dev/vda1', device_use: 'OS', file_system: 'ext4', mount_point: '/', size: 42947575808, used_size: 5346484224 },
            ],
          },
        ],
        volume_groups: [],
      },
      is_need_consistency_result: true,
    });
    expect(task.success, task.success ? '' : describeIssues(task.error)).toBe(true);
    expect(tokenRequestSchema.safeParse(passwordTokenRequest({ user: 'u', password: 'p', domain: 'd' })).success).toBe(true);
  });

  it('reject bad values naming the field', () => {
    const r = progressReportSchema.safeParse({ subtask_name: 'MIGRATE_LINUX_BLOCK', progress: 101, replicatesize: -1, totalsize: 1 });
    expect(r.success).toBe(false);
    const text = describeIssues(r.error!);
    expect(text).toContain('progress');
    expect(text).toContain('replicatesize');
    expect(text).toContain('process_trace');
    // Issue 17: the SDK's lower-case copystate is accepted (canonical upper case); an unknown state is not.
    expect(changeStateSchema.parse({ copystate: 'waiting', migrationcycle: 'CHECKING' })).toEqual({ copystate: 'WAITING', migrationcycle: 'checking' });
    expect(changeStateSchema.safeParse({ copystate: 'skipping' }).success).toBe(false);
    expect(speedLimitSetSchema.safeParse({ speed_limit: [{ start: '24:00', end: '1:00', speed: 1 }] }).success).toBe(false);
    expect(taskActionSchema.safeParse({ operation: 'explode' }).success).toBe(false);
    expect(diskInfoSchema.safeParse({ disks: [{ name: '/dev/vda' }] }).success).toBe(false);
  });
});

describe('SMS v3 response schemas', () => {
  it('accept the documented examples, nulls and numbers-for-strings included', () => {
    const list = sourceListResponseSchema.parse({
      count: 1,
      source_servers: [
        {
          id: 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxx0001',
          ip: '192.168.0.1',
          name: 'sms-test',
          enterprise_project_id: 0,
          add_date: 1598417717000,
          os_type: 'WINDOWS',
          state: 'finished',
          current_task: { id: 'x', name: 'MigrationTask', type: 'MIGRATE_BLOCK', state: 'MIGRATE_SUCCESS', estimate_complete_time: null, clone_server: null },
          checks: [{ id: 524062, params: [''], name: 'OS_VERSION', result: 'OK', error_code: null, error_params: '' }],
          some_future_field: { nested: true },
        },
      ],
    });
    expect(list.source_servers[0]!.enterprise_project_id).toBe('0');
    expect((list.source_servers[0] as Record<string, unknown>).some_future_field).toEqual({ nested: true });

    const task = taskDetailsSchema.parse({
      id: 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxx0001',
      name: 'MigrationTask',
      type: 'MIGRATE_BLOCK',
      state: 'RUNNING',
      estimate_complete_time: null,
      finish_date: null,
      float_ip: null,
      migration_ip: null,
      sub_tasks: [{ id: 7278, name: 'CREATE_CLOUD_SERVER', progress: 0, start_date: 1598435802000, end_date: null, user_op: 'REPLICATE', process_trace: null }],
      target_server: { id: 'x', vm_id: '', ip: null, disks: [{ id: 88008, name: 'Disk 1', relation_name: null, physical_volumes: [{ id: 1, mount_point: null }] }] },
    });
    expect(task.sub_tasks?.[0]?.name).toBe('CREATE_CLOUD_SERVER');

    expect(speedLimitResponseSchema.parse({ speed_limit: [{ start: '00:00', end: '23:59', speed: 1000, over_speed_threshold: 50.0 }] }).speed_limit).toHaveLength(1);
    expect(commandResponseSchema.parse({ command_name: 'START', command_param: { task_id: 't1' } }).command_param?.task_id).toBe('t1');
    expect(commandResponseSchema.parse({}).command_name).toBeUndefined();
    expect(tokenResponseSchema.parse({ token: { expires_at: '2026-11-26T12:00:00.000000Z', methods: ['password'] } }).token.expires_at).toBeTruthy();
    expect(errorBodySchema.parse({ error_code: 'SMS.9004', error_msg: 'x', details: [{ error_code: 'SMS.9004', error_msg: 'y' }] }).details).toHaveLength(1);
  });

  it('reject a missing or wrongly typed required field by name', () => {
    const missing = sourceListResponseSchema.safeParse({ count: 1 });
    expect(describeIssues(missing.error!)).toContain('source_servers');
    const wrong = taskDetailsSchema.safeParse({ id: 'x', sub_tasks: [{ progress: 'fifty' }] });
    expect(describeIssues(wrong.error!)).toContain('sub_tasks.0.progress');
    const noId = taskDetailsSchema.safeParse({ name: 'x' });
    expect(describeIssues(noId.error!)).toContain('id');
  });

  it('clamps measured progress into the documented ranges', () => {
    const r = clampProgressReport({
      subtask_name: 'MIGRATE_LINUX_BLOCK',
      progress: 100.4,
      replicatesize: 10.6,
      totalsize: 11,
      process_trace: 'x'.repeat(5000),
      migrate_speed: 16_000,
      agent_cpu_usage: 103,
      remain_time: Number.NaN,
    });
    expect(progressReportSchema.safeParse(r).success).toBe(true);
    expect(r).toMatchObject({ progress: 100, replicatesize: 11, migrate_speed: 10_000, agent_cpu_usage: 100 });
    expect(r.process_trace).toHaveLength(2048);
    expect('remain_time' in r).toBe(false);
  });

  it('fills SMS messages from the error-code table', () => {
    expect(smsMessage('SMS.0301', 'connect ECONNREFUSED')).toEqual({
      status: 400,
      error_code: 'SMS.0301',
      error_msg: 'Failed to send the network request. Cause: connect ECONNREFUSED',
    });
  });
});
