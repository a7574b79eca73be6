// Running `ferry control-plane` as a real child process, and calling it the
// way an SMS client does: requests signed by the official Huawei Cloud SDK
// signer (the oracle for ours), or carrying a token.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';
import { Agent, request } from 'undici';
import { FERRY_BIN, waitForLine } from './cli.js';

export const TEST_AK = 'FERRYTESTAK0001';
export const TEST_SK = 'ferry-test-secret-key-0001';

export interface LocalCp {
  url: string;
  dataDir: string;
  fingerprint: string | null;
  child: ChildProcessWithoutNullStreams;
  dispatcher: Agent;
  /** Signed (AK/SK) JSON request. */
  call(method: string, path: string, body?: unknown, options?: CallOptions): Promise<Reply>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
}

export interface CallOptions {
  query?: Record<string, string | number | boolean>;
  headers?: Record<string, string>;
  /** Sign with this X-Sdk-Date instead of now. */
  sdkDate?: string;
  ak?: string;
  sk?: string;
  /** Send the request without any authentication. */
  unsigned?: boolean;
  /** Send this token instead of signing. */
  token?: string;
  /** Raw body bytes instead of JSON. */
  raw?: Buffer;
  /** Sign `body` but send this one instead (a tampered request). */
  sendInstead?: unknown;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

export async function startLocalCp(options: { dataDir?: string; http?: boolean; credentials?: string; env?: NodeJS.ProcessEnv } = {}): Promise<LocalCp> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'ferry-cp-'));
  const auth = options.credentials ? ['--credentials', options.credentials] : ['--ak', TEST_AK, '--sk', TEST_SK];
  const args = ['control-plane', '--listen', '127.0.0.1:0', '--data', dataDir, ...auth, ...(options.http ? ['--http'] : [])];
  const child = spawn(process.execPath, [FERRY_BIN, ...args], { env: { ...process.env, FERRY_LOG_LEVEL: 'warn', ...options.env } });
  let m: RegExpMatchArray;
  try {
    m = await waitForLine(child, /listening url=(\S+) fingerprint=(\S+)/);
  } catch (e) {
    child.kill('SIGKILL');
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const url = m[1]!;
  const fingerprint = m[2] === 'none' ? null : m[2]!;
  const dispatcher = new Agent(
    url.startsWith('https') ? { connect: { ca: readFileSync(join(dataDir, 'tls', 'tls-cert.pem'), 'utf8') } } : {},
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdout.resume();
  child.stderr.resume();
  const cp: LocalCp = {
    url,
    dataDir,
    fingerprint,
    child,
    dispatcher,
    call: (method, path, body, opts = {}) => call(cp, method, path, body, opts),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await dispatcher.close();
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await dispatcher.close();
    },
  };
  return cp;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** `20240416T095341Z` for a Date. */
export function sdkDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

async function call(cp: LocalCp, method: string, path: string, body: unknown, opts: CallOptions): Promise<Reply> {
  const query = Object.fromEntries(Object.entries(opts.query ?? {}).map(([k, v]) => [k, String(v)]));
  const qs = new URLSearchParams(query).toString();
  const endpoint = cp.url + path;
  let headers: Record<string, string> = { 'Content-Type': 'application/json', ...opts.headers };
  let payload: string | Buffer | undefined = opts.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  if (opts.raw) headers['X-Sdk-Content-Sha256'] = createHash('sha256').update(opts.raw).digest('hex');
  if (opts.token !== undefined) {
    headers['X-Auth-Token'] = opts.token;
  } else if (!opts.unsigned) {
    if (opts.sdkDate) headers['X-Sdk-Date'] = opts.sdkDate;
    const signed = AKSKSigner.sign(
      {
        endpoint,
        method,
        headers,
        queryParams: query,
        data: opts.raw ? undefined : body,
      },
      // The signer reads only the key pair of a credential.
      { getAk: () => opts.ak ?? TEST_AK, getSk: () => opts.sk ?? TEST_SK } as unknown as Parameters<typeof AKSKSigner.sign>[1],
    ) as Record<string, string>;
    headers = signed;
  }
  if (opts.sendInstead !== undefined) payload = Buffer.isBuffer(opts.sendInstead) ? opts.sendInstead : JSON.stringify(opts.sendInstead);
  const res = await request(endpoint + (qs ? `?${qs}` : ''), {
    method: method as 'GET',
    headers,
    body: payload,
    dispatcher: cp.dispatcher,
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // keep the text
  }
  return { status: res.statusCode, headers: res.headers, body: parsed };
}

/**
 * The `POST /v3/tasks` body an operator sends for a task whose receiver runs
 * on loopback: the fields every agent test shares, plus the ones it varies
 * (`extra`: speed_limit, syncing …).
 */
export function loopbackTaskBody(task: {
  name: string;
  type: 'MIGRATE_BLOCK' | 'MIGRATE_FILE';
  sourceId: string;
  vmId: string;
  disks: unknown[];
  receiver: { port: number; fingerprint: string; token: string };
  extra?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    name: task.name,
    type: task.type,
    os_type: 'LINUX',
    migration_ip: '127.0.0.1',
    region_name: 'r',
    region_id: 'r',
    project_name: 'p',
    project_id: 'p',
    ...task.extra,
    source_server: { id: task.sourceId },
    target_server: { vm_id: task.vmId, name: 'target', disks: task.disks },
    receiver: { port: task.receiver.port, fingerprint: task.receiver.fingerprint, join_token: task.receiver.token },
  };
}
