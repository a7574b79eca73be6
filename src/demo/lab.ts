// `ferry demo`: the whole product flow on this machine, with real parts on
// loopback. Starts `ferry control-plane` (HTTPS, a fresh AK/SK pair),
// `ferry receive` (target in the demo data directory) and `ferry agent`
// (config 0600 in the data directory, control plane pinned by fingerprint)
// as child processes of this same executable; waits for the agent to
// register; creates and starts a task through the operator API (the shared
// SMS client, the calls `ferry tasks create` / `ferry tasks start` make);
// follows the control plane's task view until the pass ends; verifies the
// copy (verify.ts); optionally runs a SYNC delta pass; stops the children.
//
// Owns only the demo data directory. Never touches the agent, receiver or
// control plane internals: everything goes through their CLIs, the SMS API
// and the files they document (the agent's log file).

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { stringify } from 'yaml';
import { ControlPlaneClient } from '../sms-client/client.js';
import type { TaskCreate, TaskDetails } from '../sms/schemas/index.js';
import { FerryError, UsageError, errorMessage } from '../errors/ferry-error.js';
import { sizeOfPath } from '../platform/device-size-linux.js';
import { FerryChild, describeExit, scrub, type ChildExit } from './child.js';
import { byteCounts, formatBytes, formatDuration, formatProgress, snapshot, type ByteCounts } from './progress-line.js';
import { verifyBlock, verifyFiles, type Verification } from './verify.js';

export interface DemoOptions {
  /** File-level source tree (default /etc when no block source is given). */
  files?: string;
  /** Block-level source: an image file or a block device. */
  block?: string;
  /** Data directory (created; must be empty). Default: a fresh temp dir, removed at the end unless keep. */
  data?: string;
  keep?: boolean;
  /** Run a SYNC (delta) pass after the first one. */
  sync?: boolean;
  /** Before that pass, wait for the user (Enter) so they can change the source. */
  waitBeforeSync?: boolean;
  /** Seconds between progress polls (default 1). */
  pollSeconds?: number;
}

export interface DemoIO {
  /** A line for the person watching. */
  say(line: string): void;
  /** The live progress line (replaces the previous one on a terminal). */
  progress(line: string): void;
  /** Ends a progress line. */
  progressDone(): void;
  /** Waits until the user says go (Enter) or `signal` aborts; resolves at once without a terminal. */
  waitForUser(prompt: string, signal: AbortSignal): Promise<void>;
}

export interface PassReport {
  pass: number;
  kind: string;
  volume: string;
  bytes_on_wire: number | null;
  duration_ms: number | null;
  verification: Verification;
}

export interface DemoSummary {
  ok: boolean;
  verified: boolean;
  mode: 'files' | 'block';
  source: string;
  target: string;
  source_bytes: number | null;
  data_dir: string | null;
  source_id: string | null;
  task_id: string | null;
  task_state: string | null;
  passes: PassReport[];
  children: Record<string, { pid: number; exit: string | null }>;
  duration_ms: number;
  error?: { code: string; message: string; logs: Record<string, string[]> };
}

const START_TIMEOUT_MS = 60_000;
const REGISTER_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 15_000;
const TARGET_NAME = { files: 'files', block: 'disk0' } as const;

class DemoFailure extends FerryError {}

export async function runDemo(opts: DemoOptions, io: DemoIO, signal: AbortSignal): Promise<DemoSummary> {
  const t0 = Date.now();
  const mode: 'files' | 'block' = opts.block ? 'block' : 'files';
  if (opts.block && opts.files) throw new UsageError('give --files or --block, not both');
  const source = resolve(opts.block ?? opts.files ?? '/etc');
  const sourceBytes = await checkSource(mode, source);
  const { dir, created } = await prepareDataDir(opts.data, source, mode);

  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    io.say(`note: not running as root: the agent can read only what uid ${process.getuid()} may read${opts.files || opts.block ? '' : ' (/etc holds root-only files: run with sudo, or pick --files DIR)'}`);
  }
  const ak = `DEMO${randomBytes(8).toString('hex').toUpperCase()}`;
  const sk = randomBytes(24).toString('base64url');
  const secrets: string[] = [sk];
  const children: FerryChild[] = [];
  const target = mode === 'files' ? join(dir, 'target', 'files') : join(dir, 'target', 'disk0.img');
  const summary: DemoSummary = {
    ok: false,
    verified: false,
    mode,
    source,
    target,
    source_bytes: sourceBytes,
    data_dir: dir,
    source_id: null,
    task_id: null,
    task_state: null,
    passes: [],
    children: {},
    duration_ms: 0,
  };
  let client: ControlPlaneClient | undefined;
  const agentLog = join(dir, 'logs', 'agent.log');

  const watchChildren = () => {
    // First: Ctrl-C on a terminal reaches the children too, and they exit by themselves.
    if (signal.aborted) throw new DemoFailure('FERRY_DEMO_INTERRUPTED', 'interrupted: stopping the children');
    for (const c of children) {
      if (!c.running) throw new DemoFailure('FERRY_DEMO_CHILD', `ferry ${c.role} (pid ${c.pid}) exited unexpectedly (${describeExit(c.exitStatus!)})`);
    }
  };

  try {
    await mkdir(join(dir, 'target'), { recursive: true, mode: 0o700 });
    await mkdir(join(dir, 'logs'), { recursive: true, mode: 0o700 });

    // 1. The control plane: HTTPS on a free loopback port, one access key made for this run.
    const cp = new FerryChild('control-plane', ['control-plane', '--listen', '127.0.0.1:0', '--data', join(dir, 'control-plane'), '--ak', ak], { FERRY_CP_SK: sk });
    children.push(cp);
    const cpLine = await cp.waitForLine(/listening url=(\S+) fingerprint=(\S+)/, START_TIMEOUT_MS);
    const cpUrl = cpLine[1]!;
    const cpFingerprint = cpLine[2]!;
    io.say(`control plane  pid ${cp.pid}  ${cpUrl}  fingerprint ${cpFingerprint.slice(0, 16)}…`);

    // 2. The receiver: its target lives in the data directory.
    const recv = new FerryChild('receive', ['receive', '--listen', '127.0.0.1:0', '--data', join(dir, 'receiver'), '--target', `${TARGET_NAME[mode]}=${target}`]);
    children.push(recv);
    const rLine = await recv.waitForLine(/listening on (\S+):(\d+) fingerprint=(\S+) token=(\S+)/, START_TIMEOUT_MS);
    const receiver = { port: Number(rLine[2]), fingerprint: rLine[3]!, token: rLine[4]! };
    secrets.push(receiver.token);
    io.say(`receiver       pid ${recv.pid}  127.0.0.1:${receiver.port}  target ${target}`);

    // 3. The agent, with its config file (0600: it holds the SK) in the data directory.
    const configPath = join(dir, 'agent.yaml');
    await writeFile(configPath, agentConfig({ dir, cpUrl, cpFingerprint, ak, sk, mode, source, agentLog }), { mode: 0o600 });
    await chmod(configPath, 0o600);
    const agent = new FerryChild('agent', ['agent', '--config', configPath]);
    children.push(agent);
    io.say(`agent          pid ${agent.pid}  config ${configPath}`);
    for (const c of children) summary.children[c.role] = { pid: c.pid, exit: null };

    // 4. The operator's side: the shared SMS client, pinned to the control plane's certificate.
    client = new ControlPlaneClient({
      endpoint: cpUrl,
      auth: { type: 'aksk', ak, sk },
      fingerprint: cpFingerprint,
      retry: { max_attempts: 3, max_elapsed_ms: 20_000 },
    });
    const c = client;
    const sourceId = await until(REGISTER_TIMEOUT_MS, 'the agent to register', watchChildren, async () => (await c.listSources({ limit: 200 })).source_servers[0]?.id ?? undefined);
    summary.source_id = String(sourceId);
    const src = await c.getSource(String(sourceId));
    io.say(`registered     source ${sourceId} (${src.name ?? src.hostname ?? '?'}, ${src.os_type ?? '?'} ${src.os_version ?? ''})`.trimEnd());

    // 5. The task, carrying the receiver, as `ferry tasks create` would send it; then start it.
    const body: TaskCreate = {
      name: `ferry-demo-${mode}`,
      type: mode === 'block' ? 'MIGRATE_BLOCK' : 'MIGRATE_FILE',
      os_type: String(src.os_type ?? 'LINUX'),
      source_server: { id: String(sourceId) },
      target_server: {
        vm_id: `ferry-demo-target-${sourceId}`,
        name: 'ferry-demo-target',
        disks: [{ name: TARGET_NAME[mode], size: sourceBytes ?? 0, used_size: sourceBytes ?? 0, device_use: 'NORMAL', physical_volumes: [] }],
      },
      migration_ip: '127.0.0.1',
      region_name: 'local',
      region_id: 'local',
      project_name: 'local',
      project_id: 'local',
      receiver: { host: '127.0.0.1', port: receiver.port, fingerprint: receiver.fingerprint, join_token: receiver.token },
    };
    const taskId = String((await c.createTask(body)).id);
    summary.task_id = taskId;
    await c.taskAction(taskId, { operation: 'start' });
    io.say(`task           ${taskId} (${body.type}) started`);

    // 6. Follow it, verify, and optionally sync.
    let bytesBefore: ByteCounts = { done: 0, total: 0 };
    const runPass = async (number: number) => {
      const passStart = Date.now();
      const followed = await follow(c, taskId, String(sourceId), io, watchChildren, opts.pollSeconds ?? 1, bytesBefore);
      bytesBefore = followed.bytes;
      const final = followed.task;
      summary.task_state = final.state ?? null;
      if (final.state !== 'MIGRATE_SUCCESS') {
        throw new DemoFailure('FERRY_DEMO_TASK', `the task ended ${final.state}${final.error_json ? `: ${final.error_json}` : ''}`);
      }
      io.say(`pass ${number} done in ${formatDuration((Date.now() - passStart) / 1000)}; verifying ${mode === 'files' ? 'the tree' : 'the image'}…`);
      const verification = mode === 'files' ? await verifyFiles(source, target) : await verifyBlock(source, target);
      const stats = (await passStats(agentLog))[number - 1];
      const report: PassReport = {
        pass: number,
        kind: stats?.pass ?? (number === 1 ? 'full' : 'delta'),
        volume: TARGET_NAME[mode],
        bytes_on_wire: stats?.bytesOnWire ?? null,
        duration_ms: stats?.durationMs ?? null,
        verification,
      };
      summary.passes.push(report);
      io.say(describePass(report));
      if (!verification.ok) throw new DemoFailure('FERRY_DEMO_VERIFY', `the copy differs from the source after pass ${number}:\n  ${verification.differences.join('\n  ')}`);
    };
    await runPass(1);
    if (opts.sync || opts.waitBeforeSync) {
      if (opts.waitBeforeSync) await io.waitForUser(`change something in ${source} now if you like, then press Enter for the delta pass`, signal);
      watchChildren();
      await c.taskAction(taskId, { operation: 'sync' });
      io.say(`task           ${taskId} sync requested`);
      await runPass(2);
    }
    summary.ok = true;
    summary.verified = true;
  } catch (e) {
    const logs: Record<string, string[]> = {};
    for (const ch of children) logs[ch.role] = ch.tail(15, secrets);
    const code = e instanceof FerryError ? e.code : 'FERRY_DEMO';
    summary.error = { code, message: scrub(errorMessage(e), secrets), logs };
  } finally {
    io.progressDone();
    await client?.close().catch(() => {});
    // Agent first (it commits what is in flight), then the receiver, then the control plane.
    for (const ch of [...children].reverse()) {
      const exit: ChildExit = await ch.stop(STOP_GRACE_MS);
      summary.children[ch.role] = { pid: ch.pid, exit: describeExit(exit) };
    }
    if (created && !opts.keep) {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      summary.data_dir = null;
    }
    summary.duration_ms = Date.now() - t0;
  }
  return summary;
}

async function checkSource(mode: 'files' | 'block', path: string): Promise<number | null> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new UsageError(`${path}: ${errorMessage(e)}`);
  }
  if (mode === 'files') {
    if (!st.isDirectory()) throw new UsageError(`--files wants a directory; ${path} is not one`);
    return null;
  }
  if (!st.isFile() && !st.isBlockDevice()) throw new UsageError(`--block wants an image file or a block device; ${path} is neither`);
  const size = await sizeOfPath(path, st);
  if (size <= 0) throw new UsageError(`${path} is empty`);
  return size;
}

async function prepareDataDir(data: string | undefined, source: string, mode: 'files' | 'block'): Promise<{ dir: string; created: boolean }> {
  let dir: string;
  let created = false;
  if (data) {
    dir = resolve(data);
    const entries = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw new UsageError(`--data ${dir}: ${e.message}`);
    });
    if (entries && entries.length > 0) throw new UsageError(`--data ${dir} is not empty; give a new or empty directory`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } else {
    dir = await mkdtemp(join(tmpdir(), 'ferry-demo-'));
    created = true;
  }
  const inside = (a: string, b: string) => {
    const r = relative(b, a);
    return r === '' || (!r.startsWith('..') && !isAbsolute(r));
  };
  if (mode === 'files' && (inside(dir, source) || inside(source, dir))) {
    if (created) await rm(dir, { recursive: true, force: true });
    throw new UsageError(`the data directory ${dir} and the source ${source} must not contain each other; pick another --data`);
  }
  return { dir, created };
}

function agentConfig(o: { dir: string; cpUrl: string; cpFingerprint: string; ak: string; sk: string; mode: 'files' | 'block'; source: string; agentLog: string }): string {
  const cfg = {
    control_plane: { endpoint: o.cpUrl, auth: { ak: o.ak, sk: o.sk }, fingerprint: o.cpFingerprint, request_timeout: 10 },
    data_dir: join(o.dir, 'agent'),
    poll_interval: 0.5,
    // A loop device named as the source must be visible to discovery.
    include_loop_devices: o.mode === 'block' && /^\/dev\/loop\d+$/.test(o.source),
    log: { level: 'info', file: o.agentLog },
    niceness: { cpu: 0 },
    volumes: [{ source: o.source, target: TARGET_NAME[o.mode], kind: o.mode === 'block' ? 'block' : 'file' }],
  };
  return `# written by ferry demo for this run only\n${stringify(cfg)}`;
}

async function until<T>(ms: number, what: string, check: () => void, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    check();
    const v = await fn().catch((e: unknown) => {
      lastError = e;
      return undefined;
    });
    if (v !== undefined) return v;
    if (Date.now() > end) {
      const why = lastError === undefined ? '' : ` (last error: ${errorMessage(lastError)})`;
      throw new DemoFailure('FERRY_DEMO_TIMEOUT', `timed out after ${Math.round(ms / 1000)} s waiting for ${what}${why}`);
    }
    await sleep(250);
  }
}

const FINAL = new Set(['MIGRATE_SUCCESS', 'MIGRATE_FAIL', 'ABORT']);

/** Polls the task view until the pass ends; prints the live line on the way. */
async function follow(c: ControlPlaneClient, taskId: string, sourceId: string, io: DemoIO, check: () => void, pollSeconds: number, base: ByteCounts): Promise<{ task: TaskDetails; bytes: ByteCounts }> {
  let bytes = base;
  for (;;) {
    check();
    const task = await c.getTask(taskId);
    const src = (await c.listSources({ id: sourceId, limit: 1 }).catch(() => undefined))?.source_servers[0];
    bytes = byteCounts(src) ?? bytes;
    io.progress(formatProgress(snapshot(task, src, base)));
    if (task.state && FINAL.has(task.state)) {
      io.progressDone();
      return { task, bytes };
    }
    await sleep(pollSeconds * 1000);
  }
}

interface PassStat {
  pass: string;
  bytesOnWire: number;
  durationMs: number;
}

/** The agent's "volume replicated" log lines, one per finished pass of the volume. */
async function passStats(logFile: string): Promise<PassStat[]> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const out: PassStat[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('volume replicated')) continue;
    try {
      const j = JSON.parse(line) as Partial<PassStat>;
      out.push({ pass: String(j.pass ?? '?'), bytesOnWire: Number(j.bytesOnWire ?? 0), durationMs: Number(j.durationMs ?? 0) });
    } catch {
      // not a JSON line
    }
  }
  return out;
}

function describePass(p: PassReport): string {
  const wire = p.bytes_on_wire !== null ? `${formatBytes(p.bytes_on_wire)} on the wire` : 'bytes on the wire unknown';
  const took = p.duration_ms !== null ? ` in ${formatDuration(p.duration_ms / 1000)}` : '';
  const v = p.verification;
  const check = v.ok
    ? v.method === 'sha256'
      ? `verified: sha256 ${v.source_sha256!.slice(0, 16)}… matches`
      : `verified: ${v.method === 'rsync' ? 'rsync -aHAX --dry-run lists no differences' : 'trees identical (node digest walk)'}`
    : `NOT verified (${v.method}): ${v.differences.length} difference(s)`;
  return `pass ${p.pass} (${p.kind}): ${wire}${took}; ${check}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
