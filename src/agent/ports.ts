// What the daemon needs from the outside, as narrow interfaces: the control
// plane (implemented over the SMS client in sms-port.ts), the machine
// inventory (discovery), the replication engines (replication-port.ts) and
// the whole-server flow (whole-server-port.ts, over migration/).
// The daemon depends only on these, so each side can change without the other.

import type { ByteGate, PassOptions, PassSummary, ReceiverAddress, VolumePlan, VolumeProgress } from '../replication/types.js';
import type { Logger } from '../platform/log.js';
import type { WholeServerProgress, WholeServerStepEvent } from '../migration/whole-server.js';
import type { SourceBody } from '../sms/schemas/source.js';
import type { ProgressReport } from '../sms/schemas/progress.js';

export type CopyState = 'UNAVAILABLE' | 'WAITING' | 'INIT' | 'REPLICATE' | 'SYNCING' | 'STOPPING' | 'STOPPED' | 'DELETING' | 'ERROR' | 'CLONING' | 'CUTOVERING' | 'FINISHED';
export type MigrationCycle = 'cutovering' | 'cutovered' | 'checking' | 'setting' | 'replicating' | 'syncing';
export type TaskRunState = 'RUNNING' | 'SYNCING' | 'MIGRATE_SUCCESS' | 'MIGRATE_FAIL' | 'ABORTING' | 'ABORT';

/** The part of a task (GET /v3/tasks/{id}) the agent acts on. */
export interface TaskInfo {
  id: string;
  name?: string;
  type: 'MIGRATE_BLOCK' | 'MIGRATE_FILE';
  state?: string;
  sourceId?: string;
  migrationIp?: string;
  syncing: boolean;
  /** Mbit/s, 0 = none. */
  speedLimit?: number;
  /** Percent over the limit that trips over-speed protection. */
  overSpeedThreshold?: number;
  consistencyCheck: boolean;
  /** Target disk names in order, when the task names them. */
  targetDisks: string[];
  /**
   * The task's `target_server` as the control plane shows it (tables 4-135
   * to 4-137 plus ferry's extension fields), set only when a disk of it
   * lists its partitions: the task then migrates the whole server onto
   * those disks (unless the agent config names its volumes). Disks named
   * without partitions are plain block targets, as before.
   */
  targetServer?: Record<string, unknown>;
}

/** Receiver details from GET /v3/tasks/{id}/certkey (ferry's `receiver` extension field). */
export interface CertKey {
  host?: string;
  port: number;
  fingerprint: string;
  token: string;
}

export type { ProgressReport };

export interface ControlPlanePort {
  registerSource(body: SourceBody): Promise<string>;
  updateSource(sourceId: string, body: SourceBody): Promise<void>;
  putDiskInfo(sourceId: string, body: SourceBody): Promise<void>;
  /** The raw command body (parsed strictly by commands.ts). */
  getCommand(sourceId: string): Promise<unknown>;
  commandResult(sourceId: string, name: string, result: 'success' | 'fail', detail: Record<string, unknown>): Promise<void>;
  changeState(sourceId: string, copystate?: CopyState, migrationcycle?: MigrationCycle): Promise<void>;
  getTask(taskId: string): Promise<TaskInfo>;
  /** Undefined when the control plane names no receiver for the task (real SMS never does). */
  getCertKey(taskId: string): Promise<CertKey | undefined>;
  updateTaskState(taskId: string, state: TaskRunState, errorJson?: string): Promise<void>;
  /** GET /v3/tasks/{id}/speed-limit: the raw body (validated by throttle/). */
  getSpeedLimit(taskId: string): Promise<unknown>;
  reportProgress(taskId: string, report: ProgressReport): Promise<void>;
  uploadLog(taskId: string, archive: Buffer): Promise<void>;
}

export interface InventoryPort {
  /** The registration body (POST /v3/sources) describing this machine now. */
  discover(): Promise<SourceBody>;
}

/** One volume of a task: what to read and which receiver target it becomes. */
export type { VolumePlan };

export interface ReplicationPort {
  runPass(volume: VolumePlan, options: PassOptions): Promise<PassSummary>;
}

/** One step of a whole-server run (migration/whole-server.ts): discover the source, lay out the target, copy, configure, finish. */
export type SystemStepEvent = WholeServerStepEvent;

/** A volume's progress in a whole-server run, with its place among the volumes copied. */
export type SystemProgress = WholeServerProgress;

export interface SystemRunOptions {
  receiver: ReceiverAddress;
  /** The receiver-side name of this migration (derived from the task id; the same on every pass). */
  migrationId: string;
  mode: 'file' | 'block';
  /** The task's target_server: mapped onto the receiver's disks by disk_id, else in order. */
  targetServer: Record<string, unknown>;
  /** Only a task restarted from scratch lays out again; every other pass sends the same layout and the receiver recognises it. */
  relayout: boolean;
  verify: boolean;
  log: Logger;
  signal: AbortSignal;
  gate?: ByteGate;
  onStep(e: SystemStepEvent): void;
  onProgress(p: SystemProgress): void;
}

export interface SystemRunSummary {
  layoutState: 'created' | 'recognised';
  volumes: Array<{ id: string; kind: string; target: string; summary: PassSummary | null; skipped?: string }>;
}

export interface WholeServerPort {
  run(options: SystemRunOptions): Promise<SystemRunSummary>;
}

/**
 * Errors from the control plane that mean "this source id is gone": SMS.0507
 * (re-registration of a deleted source) and SMS.7602 (no such source), both
 * HTTP 400 as section 5.1 lists them, or a plain 404 from a server that
 * answers unknown resources that way.
 */
export function isSourceGone(err: unknown): boolean {
  const e = err as { code?: string; status?: number; statusCode?: number } | null;
  return e?.code === 'SMS.0507' || e?.code === 'SMS.7602' || e?.status === 404 || e?.statusCode === 404;
}
