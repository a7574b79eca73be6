// A task whose target_server lists disks migrates the whole server: the task
// runner hands it to the whole-server port (here a stand-in that plays the
// flow's step and volume events) and reports FORMAT_DISK_LINUX_FILE while the
// receiver lays out, then MIGRATE_LINUX_FILE over the copy, each with
// progress that never goes back; a SYNC sends the same layout (same
// migration id, relayout false) and reports SYNC_LINUX_FILE only. A task
// whose agent config names its volumes keeps copying those. When the flow
// configures the copied system, CONFIGURE_LINUX_FILE follows the copy (0,
// then 100 with what changed), after every pass; a failed configure fails
// the task with the receiver's code after saying the data is intact. The real flow,
// receiver and control plane run in test/integration/agent-whole-server.test.ts.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseAgentConfig, type AgentConfig } from '../../../src/config/agent-config.js';
import { AgentLogging } from '../../../src/agent/logging.js';
import { StateStore } from '../../../src/agent/state-store.js';
import { TaskRunner, migrationIdOf } from '../../../src/agent/task-runner.js';
import { estimateCopyBytes, SystemPassProgress } from '../../../src/agent/system-progress.js';
import type { ControlPlanePort, ReplicationPort, SystemRunOptions, SystemRunSummary, TaskInfo, WholeServerPort } from '../../../src/agent/ports.js';
import type { ProgressReport } from '../../../src/sms/schemas/progress.js';
import type { PassSummary } from '../../../src/replication/types.js';
import { FerryError } from '../../../src/errors/ferry-error.js';

const TASK_ID = 'a1b2c3d4-0000-4000-8000-00000000cafe';
const TARGET_SERVER = {
  vm_id: '',
  name: 'web01-target',
  disks: [
    {
      name: 'Disk 0',
      size: 10_000,
      used_size: 10_000,
      physical_volumes: [
        { name: '/dev/vda1', index: 0, size: 2_000, used_size: 1_000, file_system: 'ext4', mount_point: '/boot' },
        { name: '/dev/vda2', index: 1, size: 7_000, used_size: 3_000, file_system: 'xfs', mount_point: '/' },
        { name: '/dev/vda3', index: 2, size: 1_000, used_size: 1_000, file_system: 'swap' },
      ],
    },
  ],
};

const tick = (ms = 40) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await tick(10);
  }
}

class RecordingCp implements ControlPlanePort {
  reports: ProgressReport[] = [];
  taskStates: string[] = [];
  errors: string[] = [];
  task: TaskInfo = { id: TASK_ID, type: 'MIGRATE_FILE', syncing: false, consistencyCheck: false, targetDisks: ['Disk 0'], migrationIp: '127.0.0.1', targetServer: TARGET_SERVER };
  registerSource = async () => 'src-1';
  updateSource = async () => undefined;
  putDiskInfo = async () => undefined;
  getCommand = async () => ({});
  commandResult = async () => undefined;
  changeState = async () => undefined;
  getTask = async () => this.task;
  getCertKey = async () => ({ port: 9, fingerprint: 'ab'.repeat(32), token: 'join-token' });
  async updateTaskState(_t: string, s: string, e?: string) {
    this.taskStates.push(s);
    if (e) this.errors.push(e);
  }
  getSpeedLimit = async () => ({ speed_limit: [] });
  async reportProgress(_t: string, r: ProgressReport) {
    this.reports.push(r);
  }
  uploadLog = async () => undefined;
  /** The reports of one subtask, in order. */
  of(name: string): number[] {
    return this.reports.filter((r) => r.subtask_name === name).map((r) => r.progress);
  }
  /** Subtask names in the order they were first reported. */
  order(): string[] {
    return [...new Set(this.reports.map((r) => r.subtask_name))];
  }
}

const summary = (volume: string, bytes: number): PassSummary => ({
  volume, kind: 'file', pass: 'full', totalBytes: bytes, bytesRead: bytes, bytesOnWire: bytes, bytesSkippedZero: 0, bytesSkippedUnchanged: 0, durationMs: 1, digest: 'd', verified: false,
});

/** Plays a whole-server run: discover, layout (created the first time, then recognised), two volumes of 1000 and 3000 bytes. */
class FakeWholeServer implements WholeServerPort {
  runs: SystemRunOptions[] = [];
  laidOut = new Set<string>();
  fail?: FerryError;
  /** After the copy, play the configure step: it succeeds, or fails with this error. */
  configure?: 'ok' | FerryError;
  async run(o: SystemRunOptions): Promise<SystemRunSummary> {
    this.runs.push(o);
    o.onStep({ step: 'discover', state: 'start' });
    await tick();
    o.onStep({ step: 'discover', state: 'done', detail: '1 disk, 3 partitions' });
    await tick();
    o.onStep({ step: 'layout', state: 'start' });
    await tick();
    if (this.fail) {
      o.onStep({ step: 'layout', state: 'failed', detail: this.fail.message });
      throw this.fail;
    }
    const layoutState = this.laidOut.has(o.migrationId) ? 'recognised' : 'created';
    this.laidOut.add(o.migrationId);
    o.onStep({ step: 'layout', state: 'done', detail: `${layoutState}: 1 disk, 3 partitions, 2 volumes to copy` });
    o.onStep({ step: 'copy', state: 'start', detail: '2 volumes' });
    const pass = this.runs.length === 1 ? 'full' : 'delta';
    for (const [index, [id, total]] of ([['disk0p1', 1000], ['disk0p2', 3000]] as const).entries()) {
      o.onStep({ step: 'copy', state: 'start', volume: { id, index, count: 2 } });
      for (let done = 0; done <= total; done += total / 4) {
        o.onProgress({ volume: `${o.migrationId}.${id}`, kind: 'file', pass, totalBytes: total, doneBytes: done, payloadBytes: done, wireBytes: done, phase: done === total ? 'done' : 'sending', volumeId: id, volumeIndex: index, volumeCount: 2 });
        await tick();
      }
      o.onStep({ step: 'copy', state: 'done', volume: { id, index, count: 2 } });
    }
    o.onStep({ step: 'copy', state: 'done', detail: '2 of 2 volumes copied' });
    if (this.configure) {
      o.onStep({ step: 'configure', state: 'start' });
      await tick(120);
      if (this.configure !== 'ok') {
        o.onStep({ step: 'configure', state: 'failed', detail: this.configure.message });
        o.onStep({ step: 'finish', state: 'done' });
        throw new FerryError(this.configure.code, `every volume was copied, but configuring the system for its new hardware failed: ${this.configure.message}`);
      }
      o.onStep({ step: 'configure', state: 'done', detail: 'debian 12: 9 changes (/var/log/ferry-configure.log on the target)' });
    }
    o.onStep({ step: 'finish', state: 'done' });
    return {
      layoutState,
      volumes: [
        { id: 'disk0p1', kind: 'file', target: `${o.migrationId}.disk0p1`, summary: summary('disk0p1', 1000) },
        { id: 'disk0p2', kind: 'file', target: `${o.migrationId}.disk0p2`, summary: summary('disk0p2', 3000) },
        { id: 'disk0p3', kind: 'file', target: '', summary: null, skipped: 'swap is recreated, not copied' },
      ],
    };
  }
}

class NoReplication implements ReplicationPort {
  volumes: string[] = [];
  async runPass(v: { target: string }): Promise<PassSummary> {
    this.volumes.push(v.target);
    return summary(v.target, 1);
  }
}

describe('a whole-server task in the task runner', () => {
  let dir: string;
  let runner: TaskRunner | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-whole-task-'));
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(async () => {
    await runner?.shutdown();
    runner = undefined;
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(cp: RecordingCp, whole: FakeWholeServer, repl = new NoReplication(), extra: Record<string, unknown> = {}) {
    const config: AgentConfig = parseAgentConfig(
      JSON.stringify({ control_plane: { endpoint: 'http://127.0.0.1:1', auth: { token: 't' } }, data_dir: dir, poll_interval: 0.2, niceness: { cpu: 0 }, ...extra }),
      'a.json',
    );
    const { store } = await StateStore.open(dir);
    await store.update((s) => void (s.sourceId = 'src-1'));
    const logging = new AgentLogging({ level: 'warn' });
    const inventory = { discover: async () => ({ hostname: 'h', disks: [] }) };
    runner = new TaskRunner({ config, cp, inventory, replication: repl, wholeServer: whole, store, logging, log: logging.log, progressInterval: 0.02 });
    return { store, runner, repl };
  }

  it('reports FORMAT_DISK_LINUX_FILE to 100, then MIGRATE_LINUX_FILE to 100, never going back, and succeeds', async () => {
    const cp = new RecordingCp();
    const whole = new FakeWholeServer();
    const { store, runner, repl } = await start(cp, whole);
    expect(await runner.start(TASK_ID)).toBe(`task ${TASK_ID} (MIGRATE_FILE) started: the whole server onto 1 target disk(s) to receiver 127.0.0.1:9`);
    await until(() => store.get().task?.status === 'finished');
    await until(() => cp.taskStates.includes('MIGRATE_SUCCESS'));

    expect(repl.volumes).toEqual([]);
    expect(whole.runs).toHaveLength(1);
    expect(whole.runs[0]).toMatchObject({ migrationId: TASK_ID, mode: 'file', relayout: false, targetServer: TARGET_SERVER });
    expect(cp.order()).toEqual(['FORMAT_DISK_LINUX_FILE', 'MIGRATE_LINUX_FILE']);
    const format = cp.of('FORMAT_DISK_LINUX_FILE');
    const copy = cp.of('MIGRATE_LINUX_FILE');
    expect(format.at(-1)).toBe(100);
    expect(copy.at(-1)).toBe(100);
    for (const seq of [format, copy]) expect(seq).toEqual([...seq].sort((a, b) => a - b));
    expect(cp.reports.at(-1)).toMatchObject({ subtask_name: 'MIGRATE_LINUX_FILE', progress: 100, replicatesize: 4000, totalsize: 4000 });
    expect(store.get().task).toMatchObject({ passesDone: 1, system: { migrationId: TASK_ID, laidOutAt: expect.any(String) } });
    expect(store.get().task!.volumes).toMatchObject({ disk0p1: { phase: 'done', totalBytes: 1000 }, disk0p2: { phase: 'done', totalBytes: 3000 } });
  });

  it('a SYNC sends the same layout (same migration id, relayout false) and reports SYNC_LINUX_FILE only', async () => {
    const cp = new RecordingCp();
    const whole = new FakeWholeServer();
    const { store, runner } = await start(cp, whole);
    await runner.start(TASK_ID);
    await until(() => store.get().task?.status === 'finished' && runner.busyWith === undefined);
    const before = cp.reports.length;
    expect(await runner.sync(TASK_ID)).toBe(`delta pass 2 of task ${TASK_ID} started`);
    await until(() => store.get().task?.passesDone === 2);
    expect(whole.runs.map((r) => [r.migrationId, r.relayout])).toEqual([
      [TASK_ID, false],
      [TASK_ID, false],
    ]);
    const sync = cp.reports.slice(before);
    expect([...new Set(sync.map((r) => r.subtask_name))]).toEqual(['SYNC_LINUX_FILE']);
    expect(sync.map((r) => r.progress)).toEqual([...sync.map((r) => r.progress)].sort((a, b) => a - b));
    expect(sync.at(-1)!.progress).toBe(100);
  });

  it('configures after the copy: FORMAT → MIGRATE → CONFIGURE_LINUX_FILE, then after a SYNC: SYNC → CONFIGURE, each monotonic, ending on CONFIGURE 100', async () => {
    const cp = new RecordingCp();
    const whole = new FakeWholeServer();
    whole.configure = 'ok';
    const { store, runner } = await start(cp, whole);
    await runner.start(TASK_ID);
    await until(() => store.get().task?.status === 'finished' && runner.busyWith === undefined);
    await until(() => cp.taskStates.includes('MIGRATE_SUCCESS'));
    expect(cp.order()).toEqual(['FORMAT_DISK_LINUX_FILE', 'MIGRATE_LINUX_FILE', 'CONFIGURE_LINUX_FILE']);
    const names = cp.reports.map((r) => r.subtask_name);
    // Each subtask is left only after its 100 went out, and never comes back.
    expect(names.lastIndexOf('FORMAT_DISK_LINUX_FILE')).toBeLessThan(names.indexOf('MIGRATE_LINUX_FILE'));
    expect(names.lastIndexOf('MIGRATE_LINUX_FILE')).toBeLessThan(names.indexOf('CONFIGURE_LINUX_FILE'));
    for (const name of ['FORMAT_DISK_LINUX_FILE', 'MIGRATE_LINUX_FILE', 'CONFIGURE_LINUX_FILE']) {
      const seq = cp.of(name);
      expect(seq, name).toEqual([...seq].sort((a, b) => a - b));
      expect(seq.at(-1), name).toBe(100);
    }
    expect(cp.of('CONFIGURE_LINUX_FILE')[0]).toBe(0);
    expect(cp.reports.at(-1)).toMatchObject({ subtask_name: 'CONFIGURE_LINUX_FILE', progress: 100, process_trace: 'debian 12: 9 changes (/var/log/ferry-configure.log on the target)' });

    const before = cp.reports.length;
    await runner.sync(TASK_ID);
    await until(() => store.get().task?.passesDone === 2);
    const later = cp.reports.slice(before);
    expect([...new Set(later.map((r) => r.subtask_name))]).toEqual(['SYNC_LINUX_FILE', 'CONFIGURE_LINUX_FILE']);
    for (const name of ['SYNC_LINUX_FILE', 'CONFIGURE_LINUX_FILE']) {
      const seq = later.filter((r) => r.subtask_name === name).map((r) => r.progress);
      expect(seq, name).toEqual([...seq].sort((a, b) => a - b));
      expect(seq[0] === 0 || name === 'SYNC_LINUX_FILE', name).toBe(true);
    }
    expect(later.at(-1)).toMatchObject({ subtask_name: 'CONFIGURE_LINUX_FILE', progress: 100 });
  });

  it('a failed configure is reported on CONFIGURE_LINUX_FILE (the data is intact) and fails the task with the receiver\'s code', async () => {
    const cp = new RecordingCp();
    const whole = new FakeWholeServer();
    whole.configure = new FerryError('FERRY_CONFIGURE_UNSUPPORTED', 'the migrated system has no /etc/os-release: configure knows the Debian family and RHEL 7 to 9 by it; nothing was changed');
    const { store, runner } = await start(cp, whole);
    await runner.start(TASK_ID);
    await until(() => store.get().task?.status === 'failed');
    await until(() => cp.taskStates.includes('MIGRATE_FAIL'));
    expect(store.get().task!.error).toEqual({ code: 'FERRY_CONFIGURE_UNSUPPORTED', message: expect.stringMatching(/configuring the system for its new hardware failed: the migrated system has no \/etc\/os-release/) });
    expect(JSON.parse(cp.errors[0]!)).toMatchObject({ error_code: 'FERRY_CONFIGURE_UNSUPPORTED' });
    expect(cp.order()).toEqual(['FORMAT_DISK_LINUX_FILE', 'MIGRATE_LINUX_FILE', 'CONFIGURE_LINUX_FILE']);
    expect(cp.of('MIGRATE_LINUX_FILE').at(-1)).toBe(100);
    const configure = cp.reports.filter((r) => r.subtask_name === 'CONFIGURE_LINUX_FILE');
    expect(configure.map((r) => r.progress).every((p) => p === 0)).toBe(true);
    expect(configure.at(-1)!.process_trace).toMatch(/^configure failed: the migrated system has no \/etc\/os-release.*; the copied data is intact/);
  });

  it('fails the task with the layout error, and copies the configured volumes when the config names them', async () => {
    const cp = new RecordingCp();
    const whole = new FakeWholeServer();
    whole.fail = new FerryError('SMS.1315', 'Insufficient free space on target partition disk0p2: 7000 bytes asked, the disk has 5000 left.');
    const { store, runner } = await start(cp, whole);
    await runner.start(TASK_ID);
    await until(() => store.get().task?.status === 'failed');
    expect(store.get().task!.error).toEqual({ code: 'SMS.1315', message: expect.stringMatching(/^Insufficient free space on target partition disk0p2/) });
    await until(() => cp.taskStates.includes('MIGRATE_FAIL'));
    expect(JSON.parse(cp.errors[0]!)).toMatchObject({ error_code: 'SMS.1315' });
    expect(cp.order()).toEqual(['FORMAT_DISK_LINUX_FILE']);
    await runner.shutdown();

    const cp2 = new RecordingCp();
    await rm(dir, { recursive: true, force: true });
    const configured = await start(cp2, new FakeWholeServer(), new NoReplication(), { volumes: [{ source: '/srv', target: 'tree', kind: 'file' }] });
    await configured.runner.start(TASK_ID);
    await until(() => configured.store.get().task?.status === 'finished');
    expect(configured.repl.volumes).toEqual(['tree']);
    expect(configured.store.get().task!.system).toBeUndefined();
  });
});

describe('whole-server progress', () => {
  it('estimates the copy from the task: used space at file level, partition sizes at block level', () => {
    expect(estimateCopyBytes(TARGET_SERVER, 'file')).toBe(4_000); // ext4 + xfs; swap is recreated
    expect(estimateCopyBytes(TARGET_SERVER, 'block')).toBe(10_000);
    expect(estimateCopyBytes({ disks: [], volume_groups: [{ logical_volumes: [{ file_system: 'xfs', used_size: 5 }, { file_system: '', used_size: 7 }] }] }, 'file')).toBe(5);
  });

  it('stays on FORMAT until its 100 went out, and counts unstarted volumes by the estimate', () => {
    let now = 0;
    const view = new SystemPassProgress({ mode: 'block', pass: 'full', format: true, estimateBytes: 10_000, now: () => (now += 100) });
    expect(view.report()).toMatchObject({ subtask_name: 'FORMAT_DISK_LINUX_BLOCK', progress: 0 });
    view.step({ step: 'discover', state: 'done', detail: '1 disk' });
    expect(view.report()).toMatchObject({ subtask_name: 'FORMAT_DISK_LINUX_BLOCK', progress: 50 });
    view.step({ step: 'layout', state: 'done', detail: 'created' });
    view.step({ step: 'copy', state: 'start', volume: { id: 'disk0p1', index: 0, count: 2 } });
    view.update({ volume: 'm.disk0p1', kind: 'block', pass: 'full', totalBytes: 2_000, doneBytes: 2_000, payloadBytes: 2_000, wireBytes: 2_000, phase: 'done', volumeId: 'disk0p1', volumeIndex: 0, volumeCount: 2 });
    const format = view.report()!;
    expect(format).toMatchObject({ subtask_name: 'FORMAT_DISK_LINUX_BLOCK', progress: 100 });
    view.sent(format);
    // One of two volumes done, 2000 of an estimated 10000 bytes: 20 %, not 99.
    expect(view.report()).toMatchObject({ subtask_name: 'MIGRATE_LINUX_BLOCK', progress: 20, replicatesize: 2_000, totalsize: 10_000 });
    view.update({ volume: 'm.disk0p2', kind: 'block', pass: 'full', totalBytes: 7_000, doneBytes: 3_500, payloadBytes: 3_500, wireBytes: 3_500, phase: 'sending', volumeId: 'disk0p2', volumeIndex: 1, volumeCount: 2 });
    // Every volume started: the real total (9000) counts.
    expect(view.report()).toMatchObject({ progress: 61, replicatesize: 5_500, totalsize: 9_000 });
    view.update({ volume: 'm.disk0p2', kind: 'block', pass: 'full', totalBytes: 7_000, doneBytes: 7_000, payloadBytes: 7_000, wireBytes: 7_000, phase: 'done', volumeId: 'disk0p2', volumeIndex: 1, volumeCount: 2 });
    expect(view.report()).toMatchObject({ progress: 100, replicatesize: 9_000, totalsize: 9_000 });
  });

  it('keeps one subtask over a SYNC whose volumes mix full and delta passes: bytes add up, nothing goes back', () => {
    const view = new SystemPassProgress({ mode: 'file', pass: 'delta', format: false, estimateBytes: 0, now: () => 0 });
    expect(view.report()).toBeNull(); // a SYNC says nothing before its copy starts
    const vol = (i: number, pass: 'full' | 'delta', done: number, phase: 'sending' | 'done') =>
      view.update({ volume: `m.v${i}`, kind: i === 0 ? 'block' : 'file', pass, totalBytes: 100, doneBytes: done, payloadBytes: done, wireBytes: done, phase, volumeId: `v${i}`, volumeIndex: i, volumeCount: 3 });
    vol(0, 'full', 100, 'done');
    vol(1, 'delta', 100, 'done');
    vol(2, 'full', 50, 'sending');
    expect(view.report()).toMatchObject({ subtask_name: 'SYNC_LINUX_FILE', progress: 83, replicatesize: 250, totalsize: 300, process_trace: 'v0 done; v1 done; v2 sending 50% 0/1 MiB' });
    vol(2, 'full', 100, 'done');
    expect(view.report()).toMatchObject({ progress: 100, replicatesize: 300, totalsize: 300 });
  });

  it('leaves the copy only after its 100 went out, and sends CONFIGURE 0 before its 100 even when the step was quicker than the reports', () => {
    const view = new SystemPassProgress({ mode: 'block', pass: 'delta', format: false, estimateBytes: 0, now: () => 0 });
    view.update({ volume: 'm.v0', kind: 'block', pass: 'delta', totalBytes: 100, doneBytes: 50, payloadBytes: 50, wireBytes: 50, phase: 'sending', volumeId: 'v0', volumeIndex: 0, volumeCount: 1 });
    view.sent(view.report()!);
    view.update({ volume: 'm.v0', kind: 'block', pass: 'delta', totalBytes: 100, doneBytes: 100, payloadBytes: 100, wireBytes: 100, phase: 'done', volumeId: 'v0', volumeIndex: 0, volumeCount: 1 });
    view.step({ step: 'configure', state: 'start' });
    view.step({ step: 'configure', state: 'done', detail: 'debian 12: 9 changes (/var/log/ferry-configure.log on the target)' });
    const sent: Array<[string, number]> = [];
    while (!view.complete) {
      const body = view.report()!;
      sent.push([body.subtask_name, body.progress]);
      view.sent(body);
    }
    expect(sent).toEqual([
      ['SYNC_LINUX_BLOCK', 100],
      ['CONFIGURE_LINUX_BLOCK', 0],
      ['CONFIGURE_LINUX_BLOCK', 100],
    ]);
    expect(view.settled).toBe(true);
  });

  it('names the receiver-side migration after the task, in letters a target name allows', () => {
    expect(migrationIdOf(TASK_ID)).toBe(TASK_ID);
    expect(migrationIdOf('42/alpha beta')).toBe('42_alpha_beta');
  });
});
