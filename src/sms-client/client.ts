// The SMS v3 control-plane client: every endpoint the agent and the
// operator CLI use, with requests validated before they leave and
// responses validated when they arrive (src/sms/schemas), on one pooled undici
// dispatcher, authenticated by token or AK/SK (auth/), retried with backoff
// (transport.ts). It owns the HTTP conversation only: it does not decide what
// the agent does with a command, and it never logs or throws a secret.
//
//   const cp = createControlPlaneClient({ endpoint, auth: { type: 'aksk', ak, sk } });
//   const cmd = await cp.getCommand(sourceId);
//   await cp.close();

import { z } from 'zod';
import type { Logger } from '../platform/log.js';
import { encodePathSegment, sha256Hex } from '../sms/aksk-signer.js';
import { AkSkAuth } from './auth/aksk-auth.js';
import { PasswordTokenAuth, StaticTokenAuth } from './auth/token-auth.js';
import { controlPlaneOptionsSchema, type ControlPlaneOptions, type ControlPlaneOptionsInput } from './client-options.js';
import { createDispatcher } from './dispatcher.js';
import { changeStateSchema, type ChangeState } from '../sms/schemas/changestate.js';
import { certKeyResponseSchema, type CertKeyResponse } from '../sms/schemas/certkey.js';
import {
  commandResponseSchema,
  commandResultSchema,
  type CommandResponse,
  type CommandResult,
} from '../sms/schemas/command.js';
import { describeIssues } from '../sms/schemas/common.js';
import { diskInfoSchema, type DiskInfo } from '../sms/schemas/diskinfo.js';
import { progressReportSchema, type ProgressReport } from '../sms/schemas/progress.js';
import {
  sourceDetailsSchema,
  sourceListQuerySchema,
  sourceListResponseSchema,
  sourceRegisteredSchema,
  type SourceDetails,
  type SourceListQuery,
  type SourceListResponse,
  type SourceRegistered,
} from '../sms/schemas/source-read.js';
import { sourceUpdateSchema, type SourceUpdate } from '../sms/schemas/source-update.js';
import { sourceBodySchema, type SourceBody } from '../sms/schemas/source.js';
import {
  speedLimitResponseSchema,
  speedLimitSetSchema,
  type SpeedLimitResponse,
  type SpeedLimitSet,
} from '../sms/schemas/speed-limit.js';
import {
  taskActionSchema,
  taskCreatedSchema,
  taskCreateSchema,
  taskDetailsSchema,
  taskListQuerySchema,
  taskListResponseSchema,
  taskUpdateSchema,
  type TaskAction,
  type TaskCreate,
  type TaskCreated,
  type TaskDetails,
  type TaskListQuery,
  type TaskListResponse,
  type TaskUpdate,
} from '../sms/schemas/task.js';
import { SmsApiError } from './sms-api-error.js';
import { Transport, type CallSpec, type QueryValue } from './transport.js';
import type { Dispatcher } from 'undici';

export { SmsApiError } from './sms-api-error.js';
export type { ControlPlaneOptions, ControlPlaneOptionsInput } from './client-options.js';

export interface ClientContext {
  logger?: Logger;
  /** Aborts every call in flight and every retry wait (daemon shutdown). */
  signal?: AbortSignal;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
}

const p = encodePathSegment;

export class ControlPlaneClient {
  readonly options: ControlPlaneOptions;
  private readonly dispatcher: Dispatcher;
  private readonly transport: Transport;
  private closed = false;
  /** Aborts the calls still in flight when close() runs out of patience. */
  private readonly closer = new AbortController();

  constructor(input: ControlPlaneOptionsInput, context: ClientContext = {}) {
    const parsed = controlPlaneOptionsSchema.safeParse(input);
    if (!parsed.success) {
      throw new SmsApiError('SMS.9001', `control-plane client configuration: ${describeIssues(parsed.error)}`);
    }
    this.options = parsed.data;
    this.dispatcher = createDispatcher(this.options);
    const signal = context.signal ? AbortSignal.any([context.signal, this.closer.signal]) : this.closer.signal;
    this.transport = new Transport(this.options, this.dispatcher, context.logger, signal);
    const auth = this.options.auth;
    switch (auth.type) {
      case 'token':
        this.transport.authenticator = new StaticTokenAuth(auth.token);
        break;
      case 'password':
        this.transport.authenticator = new PasswordTokenAuth(this.transport, {
          user: auth.user,
          password: auth.password,
          domain: auth.domain,
          project: auth.project,
          iamEndpoint: auth.iam_endpoint,
        });
        break;
      case 'aksk':
        this.transport.authenticator = new AkSkAuth({ ak: auth.ak, sk: auth.sk, securityToken: auth.security_token, projectId: auth.project_id });
        break;
    }
  }

  /** Local clock minus the control plane's (from the last response's Date header), in ms. */
  get clockSkewMs(): number | undefined {
    return this.transport.lastClockSkewMs;
  }

  /**
   * Closes the pooled connections: waits up to `graceMs` for calls in flight,
   * then tears the sockets down (their calls fail). Calls after close fail.
   */
  async close(graceMs = 2_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    try {
      const closing = this.dispatcher.close();
      const outcome = await Promise.race([closing.then(() => 'closed' as const), late]);
      if (outcome === 'late') {
        this.closer.abort(new Error('control-plane client closed'));
        await closing;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- sources (agent) -------------------------------------------------------

  /** POST /v3/sources (4.1.2): registers (no `id`) or re-registers the source; returns its id. */
  async registerSource(body: SourceBody, o?: CallOptions): Promise<SourceRegistered> {
    return this.json({ method: 'POST', path: '/v3/sources', body: this.check('source', sourceBodySchema, body), response: sourceRegisteredSchema, ...o });
  }

  /** PUT /v3/sources/{id} (4.1.5). */
  async updateSource(sourceId: string, body: SourceUpdate, o?: CallOptions): Promise<void> {
    return this.none({ method: 'PUT', path: `/v3/sources/${p(sourceId)}`, body: this.check('source update', sourceUpdateSchema, body), ...o });
  }

  /** PUT /v3/sources/{id}/diskinfo (4.1.10). */
  async updateDiskInfo(sourceId: string, body: DiskInfo, o?: CallOptions): Promise<void> {
    return this.none({ method: 'PUT', path: `/v3/sources/${p(sourceId)}/diskinfo`, body: this.check('disk info', diskInfoSchema, body), ...o });
  }

  /** PUT /v3/sources/{id}/changestate (4.1.6). */
  async changeState(sourceId: string, body: ChangeState, o?: CallOptions): Promise<void> {
    return this.none({ method: 'PUT', path: `/v3/sources/${p(sourceId)}/changestate`, body: this.check('change state', changeStateSchema, body), ...o });
  }

  /**
   * GET /v3/sources/{id}/command (4.3.1). An empty body is "no command" ({}).
   * Any JSON object comes back (a malformed command too), so that the agent's
   * parseCommand (agent/commands.ts) can answer it with `fail`; only a body
   * that is not an object is a FERRY_BAD_RESPONSE.
   */
  async getCommand(sourceId: string, o?: CallOptions): Promise<CommandResponse | Record<string, unknown>> {
    const res = await this.json({
      method: 'GET',
      path: `/v3/sources/${p(sourceId)}/command`,
      response: z.union([commandResponseSchema, z.record(z.string(), z.unknown())]).nullish(),
      ...o,
    });
    return res ?? {};
  }

  /** POST /v3/sources/{id}/command_result (4.3.2). */
  async reportCommandResult(sourceId: string, body: CommandResult, o?: CallOptions): Promise<void> {
    return this.none({
      method: 'POST',
      path: `/v3/sources/${p(sourceId)}/command_result`,
      body: this.check('command result', commandResultSchema, body),
      ...o,
    });
  }

  // ---- sources (operators) ---------------------------------------------------

  /** GET /v3/sources (4.1.3). */
  async listSources(query: SourceListQuery = {}, o?: CallOptions): Promise<SourceListResponse> {
    const q = this.check('source list query', sourceListQuerySchema, query);
    return this.json({ method: 'GET', path: '/v3/sources', query: q as Record<string, QueryValue>, response: sourceListResponseSchema, ...o });
  }

  /** GET /v3/sources/{id} (4.1.8). */
  async getSource(sourceId: string, o?: CallOptions): Promise<SourceDetails> {
    return this.json({ method: 'GET', path: `/v3/sources/${p(sourceId)}`, response: sourceDetailsSchema, ...o });
  }

  /** DELETE /v3/sources/{id} (4.1.7); `force` (ferry) also deletes a source that still has tasks. */
  async deleteSource(sourceId: string, options: { force?: boolean } & CallOptions = {}): Promise<void> {
    const { force, ...o } = options;
    return this.none({ method: 'DELETE', path: `/v3/sources/${p(sourceId)}`, query: force ? { force: true } : undefined, ...o });
  }

  // ---- tasks ----------------------------------------------------------------

  /** POST /v3/tasks (4.2.1). Not retried once it may have reached the server. */
  async createTask(body: TaskCreate, o?: CallOptions): Promise<TaskCreated> {
    return this.json({
      method: 'POST',
      path: '/v3/tasks',
      body: this.check('task', taskCreateSchema, body),
      response: taskCreatedSchema,
      idempotent: false,
      ...o,
    });
  }

  /** GET /v3/tasks (4.2.2). */
  async listTasks(query: TaskListQuery = {}, o?: CallOptions): Promise<TaskListResponse> {
    const q = this.check('task list query', taskListQuerySchema, query);
    return this.json({ method: 'GET', path: '/v3/tasks', query: q as Record<string, QueryValue>, response: taskListResponseSchema, ...o });
  }

  /** GET /v3/tasks/{id} (4.2.5). */
  async getTask(taskId: string, o?: CallOptions): Promise<TaskDetails> {
    return this.json({ method: 'GET', path: `/v3/tasks/${p(taskId)}`, response: taskDetailsSchema, ...o });
  }

  /** PUT /v3/tasks/{id} (4.2.6). */
  async updateTask(taskId: string, body: TaskUpdate, o?: CallOptions): Promise<void> {
    return this.none({ method: 'PUT', path: `/v3/tasks/${p(taskId)}`, body: this.check('task update', taskUpdateSchema, body), ...o });
  }

  /** DELETE /v3/tasks/{id} (4.2.4). */
  async deleteTask(taskId: string, o?: CallOptions): Promise<void> {
    return this.none({ method: 'DELETE', path: `/v3/tasks/${p(taskId)}`, ...o });
  }

  /** POST /v3/tasks/{id}/action (4.2.7): start, stop, restart, sync (ferry), test … */
  async taskAction(taskId: string, body: TaskAction, o?: CallOptions): Promise<void> {
    return this.none({ method: 'POST', path: `/v3/tasks/${p(taskId)}/action`, body: this.check('task action', taskActionSchema, body), ...o });
  }

  /** PUT /v3/tasks/{id}/progress (4.2.8). */
  async reportProgress(taskId: string, body: ProgressReport, o?: CallOptions): Promise<void> {
    return this.none({ method: 'PUT', path: `/v3/tasks/${p(taskId)}/progress`, body: this.check('progress', progressReportSchema, body), ...o });
  }

  /** GET /v3/tasks/{id}/speed-limit (4.2.9). */
  async getSpeedLimit(taskId: string, o?: CallOptions): Promise<SpeedLimitResponse> {
    return this.json({ method: 'GET', path: `/v3/tasks/${p(taskId)}/speed-limit`, response: speedLimitResponseSchema, ...o });
  }

  /** POST /v3/tasks/{id}/speed-limit (4.2.10). */
  async setSpeedLimit(taskId: string, body: SpeedLimitSet, o?: CallOptions): Promise<void> {
    return this.none({ method: 'POST', path: `/v3/tasks/${p(taskId)}/speed-limit`, body: this.check('speed limit', speedLimitSetSchema, body), ...o });
  }

  /**
   * GET /v3/tasks/{id}/certkey (the SDK's showCertKey): a certificate and
   * key issued to the task's source, with `enableCaCert` also the CA; from
   * ferry's control plane also `receiver` (host, port, fingerprint, join
   * token). The private key and join token are secrets.
   */
  async getCertKey(taskId: string, o: CallOptions & { enableCaCert?: boolean } = {}): Promise<CertKeyResponse> {
    const { enableCaCert, ...rest } = o;
    return this.json({
      method: 'GET',
      path: `/v3/tasks/${p(taskId)}/certkey`,
      query: enableCaCert === undefined ? undefined : { enable_ca_cert: enableCaCert },
      response: certKeyResponseSchema,
      ...rest,
    });
  }

  /**
   * POST /v3/tasks/{id}/log (the SDK's collectLog): asks the task's agent to
   * upload its logs (UPLOAD_LOG), optionally to the bucket named.
   */
  async collectLog(taskId: string, body: { log_bucket?: string } = {}, o?: CallOptions): Promise<void> {
    return this.none({ method: 'POST', path: `/v3/tasks/${p(taskId)}/log`, body, ...o });
  }

  /**
   * POST /v3/tasks/{id}/log-archive (ferry extension): uploads a log
   * archive (the agent's answer to UPLOAD_LOG). The body's SHA-256 is
   * declared in X-Sdk-Content-Sha256, so an AK/SK signature covers it.
   */
  async uploadLog(taskId: string, archive: Uint8Array, o: CallOptions & { contentType?: string } = {}): Promise<void> {
    const { contentType, ...rest } = o;
    return this.none({
      method: 'POST',
      path: `/v3/tasks/${p(taskId)}/log-archive`,
      rawBody: archive,
      contentType: contentType ?? 'application/octet-stream',
      headers: { 'X-Sdk-Content-Sha256': sha256Hex(archive) },
      ...rest,
    });
  }

  // ---- plumbing ---------------------------------------------------------------

  private check<S extends z.ZodType>(what: string, schema: S, value: unknown): z.output<S> {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new SmsApiError('SMS.9001', `invalid ${what} request: ${describeIssues(parsed.error)}`);
    return parsed.data;
  }

  private async json<T>(spec: Omit<CallSpec<T>, 'expect'> & { response: z.ZodType<T> }): Promise<T> {
    this.assertOpen(spec);
    return (await this.transport.call({ ...spec, expect: 'json' })).data;
  }

  private async none(spec: Omit<CallSpec<unknown>, 'expect' | 'response'>): Promise<void> {
    this.assertOpen(spec);
    await this.transport.call({ ...spec, expect: 'none' });
  }

  private assertOpen(spec: { method: string; path: string }): void {
    if (this.closed) throw new SmsApiError('FERRY_ABORTED', `${spec.method} ${spec.path}: the client is closed`);
  }
}

export function createControlPlaneClient(input: ControlPlaneOptionsInput, context?: ClientContext): ControlPlaneClient {
  return new ControlPlaneClient(input, context);
}
