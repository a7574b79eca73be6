// The agent's configuration: one YAML or JSON file, validated by the zod
// schema below (the single source of truth for its shape), with defaults
// filled in. This folder owns config files and their defaults only; it does
// not talk to the control plane, start anything or log.
//
// Errors name the file and the key (`/etc/ferry/agent.yaml: control_plane.endpoint: …`).
// A file that holds a secret must not be readable or writable by group or
// others: the agent refuses to start rather than run with leaked secrets.

import { readFile, stat } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { validate as validateCron } from 'node-cron';
import { FerryError } from '../errors/ferry-error.js';
import { defaultConfigPath, defaultDataDir } from './default-paths.js';

export const CONFIG_ERROR = 'FERRY_CONFIG';

/** Where `ferry agent` looks for its config when `--config` is not given. */
export { defaultConfigPath, defaultDataDir };

const secret = z.string().min(1).max(16_384);

const tokenAuth = z.strictObject({
  /** A ready IAM token (X-Auth-Token). The agent cannot renew it. */
  token: secret,
});

const passwordAuth = z.strictObject({
  /** IAM user name; the agent fetches and renews tokens with it. */
  user: z.string().min(1).max(255),
  password: secret,
  /** The account (domain) the user belongs to. */
  domain: z.string().min(1).max(255),
  /** IAM endpoint; default: the control-plane endpoint. */
  iam_endpoint: z.url().optional(),
  /** Project the token is scoped to (name or id). */
  project: z.string().min(1).max(255).optional(),
});

const akskAuth = z.strictObject({
  ak: z.string().min(1).max(255),
  sk: secret,
  /** For temporary AK/SK. */
  security_token: secret.optional(),
  project_id: z.string().min(1).max(255).optional(),
});

export const authSchema = z.union([tokenAuth, passwordAuth, akskAuth], {
  error: 'auth needs exactly one of: {token}, {user, password, domain} or {ak, sk}',
});

const controlPlaneSchema = z.strictObject({
  /** Base URL of the SMS v3 API, e.g. https://sms.ap-southeast-1.myhuaweicloud.com */
  endpoint: z.url({ protocol: /^https?$/, error: 'endpoint must be an http(s) URL' }),
  auth: authSchema,
  /** PEM bundle of CAs to trust besides the system's (a private control plane). */
  ca_file: z.string().min(1).optional(),
  /** Pin the control plane's certificate by SHA-256 fingerprint (`ferry control-plane` prints it). */
  fingerprint: z.string().regex(/^(sha256:)?([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, 'must be a SHA-256 fingerprint: 64 hex digits').optional(),
  /** HTTP(S) proxy for control-plane traffic, e.g. http://proxy:3128 */
  proxy: z.url({ protocol: /^https?$/, error: 'proxy must be an http(s) URL' }).optional(),
  /** Seconds for one request before it counts as failed. */
  request_timeout: z.number().positive().max(600).default(30),
});

const logSchema = z
  .strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
    /** Also write JSON lines to this file, rotated by size. */
    file: z.string().min(1).optional(),
    max_size_mb: z.number().positive().max(4096).default(20),
    max_files: z.number().int().min(1).max(100).default(5),
  })
  .prefault({});

const syncSchema = z
  .strictObject({
    /** node-cron expression (5 or 6 fields) for continuous-sync delta passes. */
    schedule: z
      .string()
      .min(1)
      .refine((s) => validateCron(s), { error: 'not a valid cron expression (e.g. "0 */6 * * *")' })
      .optional(),
    /** Alternative to `schedule`: a delta pass every N hours (1–168, like SMC's Frequency). */
    every_hours: z.number().int().min(1).max(168).optional(),
  })
  .refine((s) => !(s.schedule && s.every_hours), { error: 'give either sync.schedule or sync.every_hours, not both' })
  .prefault({});

const nicenessSchema = z
  .strictObject({
    /** Unix nice value (0–19) / Windows priority class below normal when > 0. */
    cpu: z.number().int().min(0).max(19).default(10),
    io_class: z.enum(['best-effort', 'idle']).default('best-effort'),
    /** 0 (highest) – 7 (lowest) within the best-effort class. */
    io_priority: z.number().int().min(0).max(7).default(7),
  })
  .prefault({});

const receiverSchema = z.strictObject({
  /** Receiver port when the task does not name one. */
  port: z.number().int().min(1).max(65_535).default(8900),
  /** Pinned SHA-256 certificate fingerprint when the control plane has none. */
  fingerprint: z.string().regex(/^(sha256:)?([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, 'must be a SHA-256 fingerprint: 64 hex digits').optional(),
  /** Join token when the control plane has none. */
  token: secret.optional(),
});

const systemSchema = z
  .strictObject({
    /**
     * Where the source system is mounted for a whole-server task: '/' (the
     * running system), or a system mounted elsewhere (a lab's test server on
     * loop devices); mount points in the layout are relative to it.
     */
    source_root: z.string().min(1).max(4096).regex(/^\//, 'source_root must be an absolute path').default('/'),
    /** The source disks of a whole-server task (block devices; loop devices admitted); default: every disk discovery finds. */
    source_disks: z.array(z.string().min(1).max(4096).regex(/^\//, 'each source disk must be an absolute device path')).max(64).default([]),
    /** After every pass, have the receiver configure the copied system for its new hardware (CONFIGURE_LINUX_*; docs/configure.md). */
    configure: z.boolean().default(true),
    /** configure: keep the primary interface's static addresses instead of falling back to DHCP. */
    keep_static_network: z.boolean().default(false),
  })
  .prefault({});

export const agentConfigSchema = z.strictObject({
  control_plane: controlPlaneSchema,
  data_dir: z.string().min(1).default(defaultDataDir()),
  /** Seconds between command polls (a random ±20% jitter is added). */
  poll_interval: z.number().min(0.2).max(600).default(5),
  /** Report loop devices as disks in discovery (labs and tests). */
  include_loop_devices: z.boolean().default(false),
  /** Seconds between re-discoveries of the disk layout. */
  rediscover_interval: z.number().min(1).max(86_400).default(300),
  log: logSchema,
  sync: syncSchema,
  /** Glob patterns excluded from file-level replication. */
  excludes: z.array(z.string().min(1)).max(10_000).default([]),
  niceness: nicenessSchema,
  receiver: receiverSchema.prefault({}),
  /** Whole-server tasks (a task whose target_server lists disks with their partitions): where the source system is. */
  system: systemSchema,
  /**
   * Replicate exactly these volumes instead of what discovery finds: block
   * devices (block tasks) or directory trees (file tasks), each with the
   * receiver target it becomes.
   */
  volumes: z
    .array(
      z.strictObject({
        source: z.string().min(1).max(4096),
        target: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'target must be 1-128 letters, digits, _ . -'),
        kind: z.enum(['block', 'file']).optional(),
      }),
    )
    .max(256)
    .optional(),
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type AuthConfig = z.infer<typeof authSchema>;

/** True when the config carries any secret (so the file must be private). */
export function holdsSecret(raw: unknown): boolean {
  const r = raw as { control_plane?: { auth?: Record<string, unknown> }; receiver?: Record<string, unknown> } | null;
  const auth = r?.control_plane?.auth ?? {};
  return ['token', 'password', 'sk', 'security_token'].some((k) => auth[k] !== undefined) || r?.receiver?.token !== undefined;
}

/** The secret values of a config, for tests and for scrubbing free text. */
export function configSecrets(config: AgentConfig): string[] {
  const a = config.control_plane.auth as Record<string, unknown>;
  const values = [a.token, a.password, a.sk, a.security_token, config.receiver.token];
  return values.filter((v): v is string => typeof v === 'string' && v.length > 0);
}

/**
 * Every config value that must never reach a log: the secrets, plus the
 * access key. An AK is an identifier, not a secret, but a control plane may
 * echo it in an error message, and with it an onlooker knows which account
 * to attack (issue 18): the agent redacts it wherever it redacts the SK.
 */
export function configRedactions(config: AgentConfig): string[] {
  const ak = (config.control_plane.auth as Record<string, unknown>).ak;
  return [...configSecrets(config), ...(typeof ak === 'string' && ak.length > 0 ? [ak] : [])];
}

/** Parses config text (YAML, which includes JSON) without touching the disk. */
export function parseAgentConfig(text: string, file: string): AgentConfig {
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
  } catch (e) {
    // Parser messages quote the offending line, which may hold a secret: keep only the position.
    const pos = e instanceof Error && 'linePos' in e ? (e as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0] : undefined;
    const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    throw new FerryError(CONFIG_ERROR, `${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}${where}`);
  }
  if (raw === null || raw === undefined) throw new FerryError(CONFIG_ERROR, `${file}: the file is empty`);
  return validateAgentConfig(raw, file);
}

export function validateAgentConfig(raw: unknown, file: string): AgentConfig {
  const parsed = agentConfigSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.slice(0, 5).map((issue) => {
    const key = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    // zod messages for unknown keys name them; other messages never echo the value.
    return `${file}: ${key}: ${issue.message}`;
  });
  throw new FerryError(CONFIG_ERROR, lines.join('\n'));
}

/** Reads, permission-checks and validates the config file. */
export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file (create it from packaging/agent.sample.yaml)' : code === 'EACCES' ? 'permission denied' : String(code);
    throw new FerryError(CONFIG_ERROR, `${file}: cannot read the config: ${why}`);
  }
  const config = parseAgentConfig(text, file);
  if (holdsSecret(config)) await assertPrivate(file);
  return config;
}

/** Refuses a secret-holding file that group or others may read or write. */
export async function assertPrivate(file: string): Promise<void> {
  if (process.platform === 'win32') return; // ACLs: the installer restricts %ProgramData%\ferry
  const st = await stat(file);
  if ((st.mode & 0o066) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
    throw new FerryError(
      CONFIG_ERROR,
      `${file}: holds secrets but has mode ${mode} (group/others may read it); run: chmod 600 ${file}`,
    );
  }
}
