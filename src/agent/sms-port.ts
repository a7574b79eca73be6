// The control-plane port over the SMS v3 client (src/sms-client): maps the
// agent config to client options and the client's shapes to what the daemon
// needs. Token renewal, AK/SK signing, retries of single requests and
// secret-free errors are the client's; outage backoff is the daemon's.

import { readFile } from 'node:fs/promises';
import type { AgentConfig } from '../config/agent-config.js';
import { createControlPlaneClient, type ControlPlaneClient, type ControlPlaneOptionsInput } from '../sms-client/client.js';
import { proxyFromEnv } from '../sms-client/proxy-env.js';
import { FerryError } from '../errors/ferry-error.js';
import type { Logger } from '../platform/log.js';
import type { ControlPlanePort, TaskInfo } from './ports.js';

/**
 * Client options from the agent config. With no `control_plane.proxy`, the
 * environment's proxy (HTTPS_PROXY / NO_PROXY, see sms-client/proxy-env.ts)
 * is used — except with a pinned fingerprint, which needs a direct connection.
 */
export async function clientOptions(config: AgentConfig, env: NodeJS.ProcessEnv = process.env): Promise<ControlPlaneOptionsInput> {
  const cp = config.control_plane;
  const a = cp.auth;
  const auth: ControlPlaneOptionsInput['auth'] =
    'token' in a
      ? { type: 'token', token: a.token }
      : 'password' in a
        ? { type: 'password', user: a.user, password: a.password, domain: a.domain, ...(a.project && { project: { name: a.project } }), ...(a.iam_endpoint && { iam_endpoint: a.iam_endpoint }) }
        : { type: 'aksk', ak: a.ak, sk: a.sk, ...(a.security_token && { security_token: a.security_token }), ...(a.project_id && { project_id: a.project_id }) };
  let ca: string | undefined;
  if (cp.ca_file) {
    try {
      ca = await readFile(cp.ca_file, 'utf8');
    } catch (e) {
      throw new FerryError('FERRY_CONFIG', `control_plane.ca_file: cannot read ${cp.ca_file}: ${(e as NodeJS.ErrnoException).code}`);
    }
  }
  const proxy = cp.proxy ?? (cp.fingerprint ? undefined : proxyFromEnv(cp.endpoint, env));
  const ms = Math.round(cp.request_timeout * 1000);
  return {
    endpoint: cp.endpoint,
    auth,
    ...(ca && { ca }),
    ...(cp.fingerprint && { fingerprint: cp.fingerprint }),
    ...(proxy && { proxy }),
    connect_timeout_ms: Math.min(ms, 10_000),
    headers_timeout_ms: ms,
    body_timeout_ms: ms,
    // The daemon has its own outage backoff: a single call gives up quickly.
    retry: { max_attempts: 3, max_elapsed_ms: Math.min(ms, 15_000) },
  };
}

export function smsPort(client: ControlPlaneClient): ControlPlanePort {
  return {
    async registerSource(body) {
      const { id: _drop, ...rest } = body;
      return (await client.registerSource(rest)).id;
    },
    async updateSource(sourceId, body) {
      // SMS re-registration: POST /v3/sources with the id refreshes the inventory (404/SMS.0507 when gone).
      await client.registerSource({ ...body, id: sourceId });
    },
    async putDiskInfo(sourceId, body) {
      await client.updateDiskInfo(sourceId, { disks: body.disks ?? [], volumegroups: body.volume_groups ?? [], btrfs_list: body.btrfs_list ?? [] });
    },
    getCommand: (sourceId) => client.getCommand(sourceId),
    async commandResult(sourceId, name, result, detail) {
      await client.reportCommandResult(sourceId, { command_name: name, result, result_detail: detail });
    },
    async changeState(sourceId, copystate, migrationcycle) {
      if (!copystate && !migrationcycle) return;
      await client.changeState(sourceId, { ...(copystate && { copystate }), ...(migrationcycle && { migrationcycle }) });
    },
    async getTask(taskId): Promise<TaskInfo> {
      const t = await client.getTask(taskId);
      // Enum values are compared in upper case, the document's spelling, whatever case the service sends.
      const upper = t.type?.toUpperCase();
      const type = upper === 'MIGRATE_FILE' ? 'MIGRATE_FILE' : upper === 'MIGRATE_BLOCK' ? 'MIGRATE_BLOCK' : undefined;
      if (!type) throw new FerryError('SMS.9001', `task ${taskId} has type ${JSON.stringify(t.type)}; this agent runs MIGRATE_BLOCK and MIGRATE_FILE tasks`);
      const raw = t as Record<string, unknown>;
      return {
        id: String(t.id ?? taskId),
        ...(t.name && { name: t.name }),
        type,
        ...(t.state && { state: t.state.toUpperCase() }),
        ...(t.source_server?.id && { sourceId: String(t.source_server.id) }),
        ...(t.migration_ip && { migrationIp: t.migration_ip }),
        syncing: t.syncing === true,
        ...(typeof t.speed_limit === 'number' && { speedLimit: t.speed_limit }),
        ...(typeof raw.over_speed_threshold === 'number' && { overSpeedThreshold: raw.over_speed_threshold }),
        consistencyCheck: t.is_need_consistency_check === true,
        targetDisks: (t.target_server?.disks ?? []).map((d, i) => (d as { name?: string | null }).name || `disk${i}`),
        // A layout to lay out: some target disk lists its partitions (a disk named alone is a plain block target, as before).
        ...((t.target_server?.disks ?? []).some((d) => (d.physical_volumes ?? []).length > 0) && { targetServer: withoutNulls(t.target_server) as Record<string, unknown> }),
      };
    },
    async getCertKey(taskId) {
      // Only ferry's control plane names the receiver (its `receiver` extension); real SMS
      // sends certificates only, and the agent then uses its config's receiver: section.
      const r = (await client.getCertKey(taskId)).receiver;
      if (!r) return undefined;
      return { ...(r.host && { host: r.host }), port: r.port, fingerprint: r.fingerprint, token: r.join_token };
    },
    async updateTaskState(taskId, state, errorJson) {
      await client.updateTask(taskId, { state, ...(errorJson && { error_json: errorJson.slice(0, 1024) }) });
    },
    getSpeedLimit: (taskId) => client.getSpeedLimit(taskId),
    async reportProgress(taskId, report) {
      await client.reportProgress(taskId, report);
    },
    async uploadLog(taskId, archive) {
      await client.uploadLog(taskId, archive);
    },
  };
}

/**
 * A reply's object without its null fields, at every depth: a task view
 * fills the fields it does not know with null (table 4-136's disk_id,
 * relation_name, free_size …), which says nothing about the layout to make
 * and is not what POST /v3/tasks accepts (the whole-server flow checks a
 * target_server against that schema).
 */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, withoutNulls(x)]));
}

export async function createSmsPort(config: AgentConfig, log: Logger, signal: AbortSignal): Promise<{ port: ControlPlanePort; client: ControlPlaneClient }> {
  const client = createControlPlaneClient(await clientOptions(config), { logger: log, signal });
  return { port: smsPort(client), client };
}
