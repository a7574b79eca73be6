// The agent's persisted state in its data directory (state.json): which
// source id the control plane gave this machine, the machine identity it was
// registered with, the current task and pass, and per volume what the
// receiver has acknowledged. Written atomically (temp file, fsync, rename) on
// every change that matters, validated with zod on load. `ferry status` reads
// the same file. The receiver remains the source of truth for the data it
// holds; this file only says what to resume.

import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { FerryError } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../platform/atomic-file.js';
import { identitySchema, type MachineIdentity } from './identity.js';

export const STATE_FILE = 'state.json';

export const volumeStateSchema = z.object({
  kind: z.enum(['block', 'file']),
  totalBytes: z.number().nonnegative(),
  /** Bytes the receiver has acknowledged (or that were skipped as zero/unchanged) in the current pass. */
  doneBytes: z.number().nonnegative(),
  wireBytes: z.number().nonnegative().default(0),
  phase: z.string().max(32).optional(),
  /** Digest both sides agreed on at the end of the last completed pass. */
  digest: z.string().max(256).optional(),
  completedAt: z.string().optional(),
});
export type VolumeState = z.infer<typeof volumeStateSchema>;

export const TASK_STATUSES = ['running', 'stopping', 'stopped', 'waiting', 'finished', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const taskStateSchema = z.object({
  id: z.string().min(1).max(255),
  name: z.string().max(255).optional(),
  /** MIGRATE_BLOCK or MIGRATE_FILE (SMS task type). */
  type: z.string().max(64),
  /**
   * running: a pass is in progress (resume it after a restart);
   * waiting: continuous sync between passes; stopping/stopped: STOP received;
   * finished: last pass done and no continuous sync; failed: see `error`.
   */
  status: z.enum(TASK_STATUSES),
  syncing: z.boolean().default(false),
  /** Passes completed so far (the first one is the full copy). */
  passesDone: z.number().int().nonnegative().default(0),
  pass: z
    .object({
      number: z.number().int().positive(),
      kind: z.enum(['full', 'delta']),
      startedAt: z.string(),
    })
    .optional(),
  /** Receiver address and pinned fingerprint (never the token). */
  receiver: z.object({ host: z.string(), port: z.number().int(), fingerprint: z.string() }).optional(),
  /** Digest of the disk layout the task was started on (SMS.0515 when it changes). */
  layoutDigest: z.string().optional(),
  volumes: z.record(z.string(), volumeStateSchema).default({}),
  startedAt: z.string().optional(),
  lastPassAt: z.string().optional(),
  nextPassAt: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  /** A whole-server task: the receiver-side migration id, and when the receiver first laid out (or recognised) its disks. */
  system: z.object({ migrationId: z.string().max(128), laidOutAt: z.string().optional() }).optional(),
});
export type TaskState = z.infer<typeof taskStateSchema>;

export const agentStateSchema = z.object({
  version: z.literal(1),
  identity: identitySchema.optional(),
  sourceId: z.string().min(1).max(255).optional(),
  registeredAt: z.string().optional(),
  /** Last copystate / migrationcycle sent with changestate. */
  sourceState: z.string().max(64).optional(),
  migrationCycle: z.string().max(64).optional(),
  /** Digest of the disk layout last sent to the control plane. */
  layoutDigest: z.string().optional(),
  task: taskStateSchema.optional(),
  lastCommand: z
    .object({ name: z.string(), result: z.enum(['success', 'fail']), detail: z.string(), at: z.string() })
    .optional(),
  agent: z.object({ pid: z.number().int(), startedAt: z.string(), version: z.string() }).optional(),
  updatedAt: z.string(),
});
export type AgentState = z.infer<typeof agentStateSchema>;

export function emptyState(identity?: MachineIdentity): AgentState {
  return { version: 1, ...(identity && { identity }), updatedAt: new Date().toISOString() };
}

/** Reads and validates state.json; undefined when there is none. Throws on a corrupt file. */
export async function readState(dataDir: string): Promise<AgentState | undefined> {
  const file = join(dataDir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FerryError('FERRY_STATE', `${file}: cannot read agent state: ${(e as NodeJS.ErrnoException).code}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FerryError('FERRY_STATE', `${file}: agent state is not valid JSON`);
  }
  const parsed = agentStateSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new FerryError('FERRY_STATE', `${file}: agent state is invalid at ${i.path.join('.') || '(top level)'}: ${i.message}`);
  }
  return parsed.data;
}

export class StateStore {
  readonly dir: string;
  readonly file: string;
  private state: AgentState;
  private chain: Promise<void> = Promise.resolve();
  private pendingTimer: NodeJS.Timeout | undefined;

  private constructor(dir: string, state: AgentState) {
    this.dir = dir;
    this.file = join(dir, STATE_FILE);
    this.state = state;
  }

  /**
   * Opens the store in `dataDir` (created 0700 if missing). A corrupt state
   * file is moved aside to state.json.corrupt-<time> and a fresh state begins
   * (`quarantined` says where it went): the receiver still knows what it holds.
   */
  static async open(dataDir: string): Promise<{ store: StateStore; quarantined?: string; reason?: string }> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    try {
      const state = await readState(dataDir);
      return { store: new StateStore(dataDir, state ?? emptyState()) };
    } catch (e) {
      if (!(e instanceof FerryError) || e.code !== 'FERRY_STATE') throw e;
      const aside = join(dataDir, `${STATE_FILE}.corrupt-${Date.now()}`);
      await rename(join(dataDir, STATE_FILE), aside);
      return { store: new StateStore(dataDir, emptyState()), quarantined: aside, reason: e.message };
    }
  }

  get(): Readonly<AgentState> {
    return this.state;
  }

  /** Where local manifests and caches live; DELETE removes it. */
  get manifestDir(): string {
    return join(this.dir, 'manifests');
  }

  /**
   * Applies `mutate` to a copy, validates it and writes it atomically. Writes
   * are serialized; the returned promise resolves once this change is on disk.
   */
  update(mutate: (s: AgentState) => void): Promise<void> {
    const next = structuredClone(this.state);
    mutate(next);
    next.updatedAt = new Date().toISOString();
    this.state = agentStateSchema.parse(next);
    return this.flush();
  }

  /**
   * Like update, but coalesces frequent changes (progress) into at most one
   * write per `delayMs`; a later update() or flush() writes them too.
   */
  updateLazily(mutate: (s: AgentState) => void, delayMs = 1000): void {
    const next = structuredClone(this.state);
    mutate(next);
    next.updatedAt = new Date().toISOString();
    this.state = agentStateSchema.parse(next);
    if (!this.pendingTimer) {
      this.pendingTimer = setTimeout(() => {
        this.pendingTimer = undefined;
        void this.flush().catch(() => {});
      }, delayMs);
      this.pendingTimer.unref();
    }
  }

  flush(): Promise<void> {
    if (this.pendingTimer) {
      clearTimeout(this.pendingTimer);
      this.pendingTimer = undefined;
    }
    const write = this.chain.then(() => writeFileAtomic(this.file, `${JSON.stringify(this.state, null, 2)}\n`, { mode: 0o600 }));
    this.chain = write.catch(() => {});
    return write;
  }

  /** Forgets the source id, task and local manifests (DELETE); keeps the identity. */
  async forgetSource(): Promise<void> {
    await rm(this.manifestDir, { recursive: true, force: true });
    await this.update((s) => {
      delete s.sourceId;
      delete s.registeredAt;
      delete s.task;
      delete s.sourceState;
      delete s.migrationCycle;
      delete s.layoutDigest;
    });
  }
}
