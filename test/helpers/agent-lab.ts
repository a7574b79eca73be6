// The set-up the agent integration tests share: in a fresh temp dir, a local
// control plane (`ferry control-plane --http`), optionally a CpProxy in front
// of it, a receiver (`ferry receive`) with one target (or whole disks), and
// an agent config (mode 0600) for one volume or a whole server; the agent
// daemon itself starts when the test says so (`startAgent()`, as often as
// it likes). `stop()` kills what is still running and removes the dir.
// What differs between the tests (auth, the volume, extra config lines) is
// an option here, never a copy there.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readState } from '../../src/agent/state-store.js';
import { spawnFerry } from './cli.js';
import { startLocalCp, TEST_AK, TEST_SK, type LocalCp } from './control-plane.js';
import { startReceiver, type RunningReceiver } from './block.js';
import { CpProxy } from './cp-proxy.js';

export interface AgentLabOptions {
  /** Prefix of the lab's temp dir (unique per test file). */
  prefix: string;
  /**
   * The operator's password: the control plane gets a credentials file with
   * TEST_AK/TEST_SK and the user `operator` (domain `ferry`), and the agent
   * signs in as that user. Without it both use TEST_AK/TEST_SK.
   */
  password?: string;
  /**
   * The one volume. `block`: the receiver's target `disk0` is a sparse
   * `target.img` of `size` in the lab dir; the source is `source` (a device,
   * say) or else a `source.img` of `size` random bytes in the lab dir.
   * `file`: the empty directory `src` in the lab dir (the test fills it) goes
   * to the receiver's target `tree`, the empty directory `dst`.
   * `system`: a whole server; the receiver gets each of `disks` as a blank
   * sparse image `NAME.img` in the lab dir (`--disk NAME=FILE`), and the
   * agent config names no volumes but the source (`system.source_root`,
   * `system.source_disks`): tasks whose target_server lists disks.
   * `configure` (default false: the system lab is not a bootable system)
   * becomes `system.configure`.
   */
  volume: { kind: 'block'; size: number; source?: string } | { kind: 'file' } | { kind: 'system'; disks: Array<{ name: string; sizeBytes: number }>; sourceRoot: string; sourceDisks: string[]; configure?: boolean };
  /** Put a CpProxy between the agent and the control plane. */
  proxy?: boolean;
  /** More lines under `control_plane:` in agent.yaml (without the indent). */
  controlPlane?: string[];
  /** More top-level lines in agent.yaml (`sync: …`, `rediscover_interval: 1` …). */
  config?: string[];
  /** The agent logs at debug level to `logFile` too. */
  logFile?: boolean;
}

export interface LabAgent {
  child: ChildProcessWithoutNullStreams;
  /** Everything it wrote so far, stdout and stderr together. */
  out: () => string;
  exited: Promise<number | null>;
}

export interface AgentLab {
  dir: string;
  /** The control plane; `startCp()` replaces it. */
  cp: LocalCp;
  proxy: CpProxy | undefined;
  recv: RunningReceiver;
  /** The volume's source and the receiver's target (image files, or directories for `file`; `system`: the source root and the lab dir). */
  source: string;
  target: string;
  /** `system`: the receiver's disks, by name, as image files. */
  disks: Record<string, string>;
  configPath: string;
  dataDir: string;
  logFile: string;
  /** Every agent started, the latest last. */
  agents: LabAgent[];
  /** Spawns `ferry agent --config configPath`. */
  startAgent(): LabAgent;
  /** The agent's state file. */
  state(): ReturnType<typeof readState>;
  /** Starts a control plane on the lab's data (a restart after `cp.stop()`); the proxy, if any, forwards to it. */
  startCp(): Promise<LocalCp>;
  /**
   * Stops every agent still running (with `agentSignal`, SIGKILL by default;
   * another signal is followed by SIGKILL after 10 s), then the receiver,
   * the control plane and the proxy, and removes the dir.
   */
  stop(options?: { agentSignal?: NodeJS.Signals }): Promise<void>;
}

export async function startAgentLab(options: AgentLabOptions): Promise<AgentLab> {
  const dir = mkdtempSync(join(tmpdir(), options.prefix));
  const block = options.volume.kind === 'block' ? options.volume : undefined;
  const system = options.volume.kind === 'system' ? options.volume : undefined;
  const credentials = join(dir, 'cp-credentials.json');
  const cpOptions = { http: true, dataDir: join(dir, 'cp'), ...(options.password === undefined ? {} : { credentials }) };
  const lab: AgentLab = {
    dir,
    cp: undefined as unknown as LocalCp,
    proxy: undefined,
    recv: undefined as unknown as RunningReceiver,
    source: block ? (block.source ?? join(dir, 'source.img')) : system ? system.sourceRoot : join(dir, 'src'),
    target: block ? join(dir, 'target.img') : system ? dir : join(dir, 'dst'),
    disks: Object.fromEntries((system?.disks ?? []).map((d) => [d.name, join(dir, `${d.name}.img`)])),
    configPath: join(dir, 'agent.yaml'),
    dataDir: join(dir, 'agent-data'),
    logFile: join(dir, 'logs', 'agent.log'),
    agents: [],
    startAgent() {
      const child = spawnFerry(['agent', '--config', lab.configPath]);
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (out += b.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const agent = { child, out: () => out, exited };
      lab.agents.push(agent);
      return agent;
    },
    state: () => readState(lab.dataDir),
    async startCp() {
      lab.cp = await startLocalCp(cpOptions);
      if (lab.proxy) lab.proxy.upstream = lab.cp.url;
      return lab.cp;
    },
    async stop({ agentSignal = 'SIGKILL' } = {}) {
      for (const { child, exited } of lab.agents) {
        if (child.exitCode !== null || child.signalCode !== null) continue;
        child.kill(agentSignal);
        if (agentSignal !== 'SIGKILL') setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
        await exited;
      }
      await lab.recv?.stop();
      await lab.cp?.stop();
      await lab.proxy?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    if (block) {
      if (block.source === undefined) writeFileSync(lab.source, randomBytes(block.size));
      writeFileSync(lab.target, Buffer.alloc(0));
      truncateSync(lab.target, block.size);
    } else if (system) {
      for (const d of system.disks) {
        writeFileSync(lab.disks[d.name]!, Buffer.alloc(0));
        truncateSync(lab.disks[d.name]!, d.sizeBytes);
      }
    } else {
      mkdirSync(lab.source);
      mkdirSync(lab.target);
    }
    if (options.password !== undefined) {
      const users = [{ name: 'operator', password: options.password, domain: 'ferry' }];
      writeFileSync(credentials, JSON.stringify({ access_keys: [{ ak: TEST_AK, sk: TEST_SK }], users }), { mode: 0o600 });
    }
    await lab.startCp();
    if (options.proxy) {
      lab.proxy = new CpProxy(lab.cp.url);
      await lab.proxy.start();
    }
    lab.recv = system
      ? await startReceiver(join(dir, 'recv'), [], Object.entries(lab.disks).flatMap(([name, image]) => ['--disk', `${name}=${image}`]))
      : await startReceiver(join(dir, 'recv'), [block ? `disk0=${lab.target}` : `tree=${lab.target}`]);
    const auth = options.password === undefined ? `{ak: ${TEST_AK}, sk: ${TEST_SK}}` : `{user: operator, password: "${options.password}", domain: ferry}`;
    const lines = [
      'control_plane:',
      `  endpoint: ${lab.proxy?.url ?? lab.cp.url}`,
      `  auth: ${auth}`,
      ...(options.controlPlane ?? []).map((l) => `  ${l}`),
      `data_dir: ${lab.dataDir}`,
      'poll_interval: 0.5',
      'niceness: {cpu: 0}',
      ...(options.logFile ? ['log:', '  level: debug', `  file: ${lab.logFile}`] : []),
      ...(options.config ?? []),
      ...(system
        ? ['system:', `  source_root: ${system.sourceRoot}`, `  source_disks: [${system.sourceDisks.join(', ')}]`, `  configure: ${system.configure ?? false}`]
        : ['volumes:', `  - {source: ${lab.source}, target: ${block ? 'disk0' : 'tree'}, kind: ${options.volume.kind}}`]),
      '',
    ];
    writeFileSync(lab.configPath, lines.join('\n'), { mode: 0o600 });
    chmodSync(lab.configPath, 0o600);
  } catch (e) {
    await lab.stop().catch(() => undefined);
    throw e;
  }
  return lab;
}
