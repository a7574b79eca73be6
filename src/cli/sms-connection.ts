// Shared wiring for the operator commands (`ferry sources`, `ferry tasks`,
// `ferry speed-limit`): which SMS endpoint to talk to (a local control plane
// found through its data directory, or any --endpoint) and with which
// credentials, turned into a ControlPlaneClient; and plain table output.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ControlPlaneClient } from '../sms-client/client.js';
import type { AuthOptions } from '../sms-client/client-options.js';
import { UsageError } from '../errors/ferry-error.js';

export interface ConnectionOpts {
  data?: string;
  endpoint?: string;
  fingerprint?: string;
  ca?: string;
  ak?: string;
  sk?: string;
  token?: string;
  user?: string;
  password?: string;
  domain?: string;
  json?: boolean;
}

/** Adds the endpoint, credential and output options to an operator command. */
export function withConnection(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'data directory of a local control plane (its URL and certificate come from control-plane.json) [env FERRY_CP_DATA]')
    .option('--endpoint <url>', 'SMS endpoint URL instead of a local control plane [env FERRY_SMS_ENDPOINT]')
    .option('--fingerprint <sha256>', 'pin the server certificate by its SHA-256 fingerprint')
    .option('--ca <file>', 'PEM bundle of CAs to trust')
    .option('--ak <key>', 'access key for AK/SK signing [env FERRY_SMS_AK]')
    .option('--sk <secret>', 'secret key for AK/SK signing [env FERRY_SMS_SK]')
    .option('--token <token>', 'an X-Auth-Token to use [env FERRY_SMS_TOKEN]')
    .option('--user <name>', 'user for a password token (with --domain; password from env FERRY_SMS_PASSWORD)')
    .option('--password <password>', 'password for --user [env FERRY_SMS_PASSWORD]')
    .option('--domain <name>', 'domain (account) of --user')
    .option('--json', 'print the raw JSON response');
}

export async function connect(opts: ConnectionOpts): Promise<ControlPlaneClient> {
  const env = process.env;
  let endpoint = opts.endpoint ?? env.FERRY_SMS_ENDPOINT;
  let fingerprint = opts.fingerprint;
  const data = opts.data ?? env.FERRY_CP_DATA;
  if (!endpoint) {
    if (!data) throw new UsageError('say which control plane: --data DIR of a local one, or --endpoint URL');
    // Loaded here, not at the top: every `ferry` run would pay for them.
    const { readControlPlaneInfo } = await import('../sms-server/control-plane.js');
    const info = await readControlPlaneInfo(data);
    endpoint = info.url;
    fingerprint ??= info.fingerprint ?? undefined;
  }
  const ak = opts.ak ?? env.FERRY_SMS_AK;
  const sk = opts.sk ?? env.FERRY_SMS_SK;
  const token = opts.token ?? env.FERRY_SMS_TOKEN;
  const password = opts.password ?? env.FERRY_SMS_PASSWORD;
  let auth: AuthOptions;
  if (ak !== undefined || sk !== undefined) {
    if (!ak || !sk) throw new UsageError('--ak and --sk go together');
    auth = { type: 'aksk', ak, sk };
  } else if (token) {
    auth = { type: 'token', token };
  } else if (opts.user) {
    if (!password || !opts.domain) throw new UsageError('--user needs --domain and a password (--password or FERRY_SMS_PASSWORD)');
    auth = { type: 'password', user: opts.user, password, domain: opts.domain };
  } else {
    throw new UsageError('give credentials: --ak/--sk (or FERRY_SMS_AK/FERRY_SMS_SK), --token, or --user/--domain with a password');
  }
  const ca = opts.ca ? await readFile(opts.ca, 'utf8') : undefined;
  const { ControlPlaneClient } = await import('../sms-client/client.js');
  return new ControlPlaneClient({
    endpoint,
    auth,
    ...(fingerprint ? { fingerprint } : {}),
    ...(ca ? { ca } : {}),
    retry: { max_attempts: 3, max_elapsed_ms: 20_000 },
  });
}

/** Runs `fn` with a client and closes it afterwards. */
export async function withClient<T>(opts: ConnectionOpts, fn: (c: ControlPlaneClient) => Promise<T>): Promise<T> {
  const client = await connect(opts);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Left-aligned columns; empty cells print as '-'. */
export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  const cells = rows.map((r) => columns.map((c) => (r[c] === undefined || r[c] === null || r[c] === '' ? '-' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ') + '\n';
  process.stdout.write(line(columns.map((c) => c.toUpperCase())));
  for (const row of cells) process.stdout.write(line(row));
}

export function formatDate(ms: unknown): string {
  return typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}
