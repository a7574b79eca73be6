// The daemon's command handling, in process, against a scripted control
// plane and a replication stand-in (the real ones are exercised end to end
// in test/integration/agent-e2e.test.ts). Shows: registration and
// re-registration, every command answered, STOP within seconds, resume of a
// running task after restart, DELETE forgetting the source, and no secret in
// any log line.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseAgentConfig, type AgentConfig } from '../../../src/config/agent-config.js';
import { AgentDaemon } from '../../../src/agent/daemon.js';
import { AgentLogging } from '../../../src/agent/logging.js';
import { StateStore } from '../../../src/agent/state-store.js';
import { identityFromParts } from '../../../src/agent/identity.js';
import type { CertKey, ControlPlanePort, ReplicationPort, TaskInfo, VolumePlan } from '../../../src/agent/ports.js';
import type { PassOptions, PassSummary } from '../../../src/replication/types.js';
import type { SourceBody } from '../../../src/sms/schemas/source.js';
import { FerryError, receivedCode } from '../../../src/errors/ferry-error.js';

const SECRET_TOKEN = 'cp-token-VERY-SECRET-123';
const JOIN_TOKEN = 'join-token-SECRET-456';

class ScriptedCp implements ControlPlanePort {
  commands: unknown[] = [];
  results: Array<{ name: string; result: string; detail: Record<string, unknown> }> = [];
  states: Array<[string | undefined, string | undefined]> = [];
  taskStates: string[] = [];
  progress: number[] = [];
  registered = 0;
  known = new Set<string>();
  down = false;
  logs: Buffer[] = [];
  private check() {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:1');
  }
  async registerSource(_b: SourceBody) {
    this.check();
    const id = `src-${++this.registered}`;
    this.known.add(id);
    return id;
  }
  async updateSource(id: string) {
    this.check();
    if (!this.known.has(id)) throw new FerryError('SMS.0507', 'Source server details deleted. Register it with SMS again.');
  }
  diskInfos = 0;
  async putDiskInfo() {
    this.diskInfos++;
  }
  async getCommand(id: string) {
    this.check();
    if (!this.known.has(id)) throw Object.assign(new FerryError('SMS.0507', 'gone'), { status: 404 });
    return this.commands.shift() ?? {};
  }
  async commandResult(_id: string, name: string, result: 'success' | 'fail', detail: Record<string, unknown>) {
    this.check();
    this.results.push({ name, result, detail });
  }
  async changeState(_id: string, c?: string, m?: string) {
    this.states.push([c, m]);
  }
  async getTask(id: string): Promise<TaskInfo> {
    this.check();
    if (id === 'missing') throw Object.assign(new FerryError(receivedCode('SMS.1205'), 'task not found', { recovery: 'permanent' }), { status: 400 });
    return { id, type: 'MIGRATE_BLOCK', syncing: id.startsWith('sync'), consistencyCheck: false, targetDisks: [], migrationIp: '127.0.0.1' };
  }
  async getCertKey(): Promise<CertKey> {
    return { port: 9, fingerprint: 'ab'.repeat(32), token: JOIN_TOKEN };
  }
  errors: string[] = [];
  async updateTaskState(_t: string, s: string, e?: string) {
    this.taskStates.push(s);
    if (e) this.errors.push(e);
  }
  async getSpeedLimit() {
    return { speed_limit: [] };
  }
  async reportProgress(_t: string, r: { progress: number }) {
    this.progress.push(r.progress);
  }
  async uploadLog(_t: string, a: Buffer) {
    this.logs.push(a);
  }
}

/**
 * Replicates 10 "chunks" of 100 ms each; resumes from what was acknowledged.
 * Chunk i is only sent once i < `limit`: until then the pass waits (still
 * honouring abort), so a test decides how far a pass gets before its next
 * command instead of racing the clock (on a loaded machine a pass could
 * otherwise finish before the STOP or the shutdown reaches it).
 */
class SlowReplication implements ReplicationPort {
  acked = new Map<string, number>();
  sent: number[] = [];
  limit = 10;
  async runPass(v: VolumePlan, o: PassOptions): Promise<PassSummary> {
    const start = this.acked.get(v.target) ?? 0;
    for (let i = start; i < 10; i++) {
      while (i >= this.limit && !o.signal?.aborted) await new Promise((r) => setTimeout(r, 10));
      if (o.signal?.aborted) throw o.signal.reason;
      await new Promise((r) => setTimeout(r, 100));
      this.sent.push(i);
      this.acked.set(v.target, i + 1);
      o.onProgress?.({ volume: v.target, kind: 'block', pass: start ? 'delta' : 'full', totalBytes: 10, doneBytes: i + 1, payloadBytes: i + 1, wireBytes: i + 1, phase: 'sending' });
    }
    this.acked.set(v.target, 0);
    o.onProgress?.({ volume: v.target, kind: 'block', pass: start ? 'delta' : 'full', totalBytes: 10, doneBytes: 10, payloadBytes: 10, wireBytes: 10, phase: 'done' });
    return { volume: v.target, kind: 'block', pass: 'full', totalBytes: 10, bytesRead: 10, bytesOnWire: 10, bytesSkippedZero: 0, bytesSkippedUnchanged: 0, durationMs: 1, digest: 'd', verified: false };
  }
}

let diskSize = 10;
const inventory = { discover: async (): Promise<SourceBody> => ({ hostname: 'h', disks: [{ name: '/dev/vdz', size: diskSize, used_size: 1, device_use: 'OS', physical_volumes: [] }] as never }) };

async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('agent daemon (in process)', () => {
  let dir: string;
  let config: AgentConfig;
  let lines: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-daemon-'));
    config = parseAgentConfig(
      JSON.stringify({ control_plane: { endpoint: 'http://127.0.0.1:1', auth: { token: SECRET_TOKEN } }, data_dir: dir, poll_interval: 0.2, niceness: { cpu: 0 } }),
      'a.json',
    );
    lines = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      lines.push(String(s));
      return true;
    });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  async function startAgent(cp: ScriptedCp, repl: ReplicationPort, cfg: AgentConfig = config) {
    const { store } = await StateStore.open(dir);
    const logging = new AgentLogging({ level: 'debug', secrets: [SECRET_TOKEN] });
    logging.log.info({ headers: { 'X-Auth-Token': SECRET_TOKEN } }, `request failed for token ${SECRET_TOKEN}`);
    const ac = new AbortController();
    const daemon = new AgentDaemon({ config: cfg, cp, inventory, replication: repl, store, logging });
    const done = daemon.run(ac.signal);
    return { store, stop: async () => (ac.abort(), await done) };
  }

  it('registers, answers START/STOP/SYNC/UPLOAD_LOG/unknown/malformed, and resumes after restart', async () => {
    const cp = new ScriptedCp();
    const repl = new SlowReplication();
    repl.limit = 3; // the first pass parks after 3 chunks: the STOP finds it running
    let a = await startAgent(cp, repl);
    await until(() => a.store.get().sourceId === 'src-1');

    cp.commands.push({ command_name: 'REBOOT' }, { command_name: 'START', command_param: 'nope' }, { command_name: 'START', command_param: { task_id: 't1' } });
    await until(() => cp.results.length === 3);
    expect(cp.results[0]).toMatchObject({ name: 'REBOOT', result: 'fail' });
    expect(cp.results[0]!.detail.msg).toMatch(/unknown command "REBOOT"/);
    expect(cp.results[1]).toMatchObject({ result: 'fail' });
    expect(cp.results[2]).toMatchObject({ name: 'START', result: 'success' });

    await until(() => repl.sent.length >= 3);
    cp.commands.push({ command_name: 'STOP' });
    await until(() => cp.results.length === 4);
    expect(cp.results[3]).toMatchObject({ name: 'STOP', result: 'success' });
    expect(a.store.get().task?.status).toBe('stopped');
    const sentAtStop = repl.sent.length;

    repl.limit = sentAtStop + 2; // the resumed pass parks again: the shutdown finds it mid-pass
    cp.commands.push({ command_name: 'START', command_param: { task_id: 't1' } });
    await until(() => repl.sent.length >= sentAtStop + 2);
    await a.stop(); // shutdown mid-pass: the task stays "running"
    expect(a.store.get().task?.status).toBe('running');

    const sentBefore = repl.sent.length;
    repl.limit = 10;
    a = await startAgent(cp, repl); // "restart"
    await until(() => a.store.get().task?.status === 'finished');
    // resumed where acknowledged: no chunk sent twice since the first STOP
    const after = repl.sent.slice(sentAtStop);
    expect(new Set(after).size).toBe(after.length);
    expect(repl.sent.length - sentBefore).toBeLessThan(10);
    await until(() => cp.taskStates.includes('MIGRATE_SUCCESS'));
    expect(cp.progress).toContain(100);

    cp.commands.push({ command_name: 'UPLOAD_LOG', command_param: { task_id: 't1' } });
    await until(() => cp.logs.length === 1);
    expect(cp.logs[0]!.subarray(0, 4).toString('hex')).toBe('04224d18'); // LZ4 frame magic

    cp.commands.push({ command_name: 'START', command_param: { task_id: 'missing' } });
    await until(() => cp.results.at(-1)?.detail.msg === 'task not found');
    expect(cp.results.at(-1)).toMatchObject({ result: 'fail', detail: { error_code: 'SMS.1205' } });
    await a.stop();

    const all = lines.join('');
    expect(all).toContain('[redacted]');
    expect(all).not.toContain(SECRET_TOKEN);
    expect(all).not.toContain(JOIN_TOKEN);
    expect(cp.logs.map((b) => b.toString('latin1')).join('')).not.toContain(SECRET_TOKEN);
  });

  it('re-registers when the source is gone, survives an outage, and forgets the source on DELETE', async () => {
    const cp = new ScriptedCp();
    const repl = new SlowReplication();
    const a = await startAgent(cp, repl);
    await until(() => a.store.get().sourceId === 'src-1');
    cp.known.delete('src-1');
    await until(() => a.store.get().sourceId === 'src-2');

    cp.down = true;
    cp.commands.push({ command_name: 'START', command_param: { task_id: 'sync-1' } });
    // Down until the agent has noticed (a fixed pause may pass unnoticed on a loaded machine).
    await until(() => /control plane unreachable; retrying/.test(lines.join('')));
    cp.down = false;
    await until(() => cp.results.some((r) => r.name === 'START' && r.result === 'success'));
    await until(() => a.store.get().task?.status === 'waiting');
    expect(lines.join('')).toMatch(/control plane unreachable; retrying/);
    expect(lines.join('')).toMatch(/control plane reachable again/);

    cp.commands.push({ command_name: 'SYNC', command_param: { task_id: 'sync-1' } });
    await until(() => a.store.get().task?.passesDone === 2);

    cp.commands.push({ command_name: 'DELETE' });
    await until(() => cp.results.some((r) => r.name === 'DELETE'));
    await until(() => a.store.get().sourceId === undefined);
    expect(a.store.get().task).toBeUndefined();
    const polled = cp.commands.length;
    cp.commands.push({ command_name: 'START', command_param: { task_id: 'x' } });
    await new Promise((r) => setTimeout(r, 600));
    expect(cp.commands.length).toBe(polled + 1); // no longer polling
    await a.stop();
  });

  it('fails a running block task with SMS.0515 when re-discovery finds another disk layout', async () => {
    const cp = new ScriptedCp();
    const slow: ReplicationPort = {
      runPass: (_v, o) =>
        new Promise((_resolve, reject) => {
          o.signal?.addEventListener('abort', () => reject(o.signal!.reason), { once: true });
        }),
    };
    const a = await startAgent(cp, slow, { ...config, rediscover_interval: 1 });
    await until(() => a.store.get().sourceId !== undefined);
    cp.commands.push({ command_name: 'START', command_param: { task_id: 't-layout' } });
    await until(() => a.store.get().task?.status === 'running');
    diskSize = 20; // the disk grew
    try {
      await until(() => a.store.get().task?.status === 'failed');
    } finally {
      diskSize = 10;
    }
    expect(a.store.get().task?.error?.code).toBe('SMS.0515');
    await until(() => cp.taskStates.includes('MIGRATE_FAIL'));
    expect(cp.errors.at(-1)).toMatch(/SMS\.0515/);
    await until(() => cp.diskInfos > 0);
    await a.stop();
  });

  it('registers as a new source when the machine identity changed (a cloned disk)', async () => {
    const { store } = await StateStore.open(dir);
    await store.update((s) => {
      s.identity = identityFromParts({ machineId: 'some-other-machine', hostname: 'elsewhere' });
      s.sourceId = 'src-of-the-original';
      s.task = { id: 't-orig', type: 'MIGRATE_BLOCK', status: 'running', syncing: false, passesDone: 0, volumes: {} };
    });
    const cp = new ScriptedCp();
    cp.known.add('src-of-the-original');
    const a = await startAgent(cp, new SlowReplication());
    await until(() => a.store.get().sourceId === 'src-1');
    expect(a.store.get().task).toBeUndefined();
    expect(a.store.get().identity?.fingerprint).not.toBe(identityFromParts({ machineId: 'some-other-machine', hostname: 'elsewhere' }).fingerprint);
    expect(lines.join('')).toMatch(/machine identity changed/);
    await a.stop();
  });
});
