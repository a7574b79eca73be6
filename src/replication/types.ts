// The contract between the replication engines (block/, file/) and their
// callers (the `ferry migrate` harness and the agent daemon), and the hooks
// through which throttle/ and progress/ take part in a pass. Engines only
// depend on these shapes, never on the CLI, the agent or the control plane.

import type { Logger } from '../platform/log.js';
import type { ByteGate } from '../protocol/channel.js';

/** Where a receiver listens and how to prove who we are to it. */
export interface ReceiverAddress {
  host: string;
  port: number;
  /** SHA-256 fingerprint of the receiver's certificate (pinned). */
  fingerprint: string;
  /** The task's join token; a secret, never logged. */
  token: string;
}

/** The rate limiter a pass writes through; defined beside the channel that paces with it. */
export type { ByteGate } from '../protocol/channel.js';

/** One volume to replicate: what to read and which receiver target it becomes. */
export interface VolumePlan {
  kind: 'block' | 'file';
  /** Block device path (or image file), or the root directory of a file tree. */
  source: string;
  /** Receiver-side target name. */
  target: string;
  /** File trees: glob excludes (config's, then the task's). */
  excludes?: string[];
}

/** A snapshot of one volume's pass, emitted often (at least every second of work). */
export interface VolumeProgress {
  /** The receiver-side target name (e.g. `0_1`, `disk0`, `root`). */
  volume: string;
  kind: 'block' | 'file';
  /** 'full' on a first pass, 'delta' when the receiver already held data. */
  pass: 'full' | 'delta';
  /** Bytes of the volume in this pass. */
  totalBytes: number;
  /** Bytes accounted for: sent and acknowledged, skipped as zero, or unchanged. */
  doneBytes: number;
  /**
   * Optional: doneBytes plus the bytes of the volume sent and not yet
   * acknowledged — where the sender is. Progress reports count doneBytes;
   * the ETA uses this, since acknowledgements arrive in steps.
   */
  sentBytes?: number;
  /** Payload bytes (before compression) sent so far. */
  payloadBytes: number;
  /** Bytes written to the socket so far (frames, after compression). */
  wireBytes: number;
  phase: 'connecting' | 'scanning' | 'sending' | 'verifying' | 'done';
}

export type ProgressListener = (p: VolumeProgress) => void;

/** What every pass takes besides its source and target. */
export interface PassOptions {
  receiver: ReceiverAddress;
  log: Logger;
  gate?: ByteGate;
  onProgress?: ProgressListener;
  /** Aborting stops the pass cleanly: in-flight data committed, then reject with an AbortError. */
  signal?: AbortSignal;
  /** Ask the receiver to re-read its target and compare (is_need_consistency_check). */
  verify?: boolean;
}

/** The result of a completed pass; `ferry migrate --json` prints an array of these. */
export interface PassSummary {
  volume: string;
  kind: 'block' | 'file';
  pass: 'full' | 'delta';
  totalBytes: number;
  bytesRead: number;
  /** Bytes on the socket in both directions (frames included, TLS records not), over every attempt. */
  bytesOnWire: number;
  bytesSkippedZero: number;
  bytesSkippedUnchanged: number;
  durationMs: number;
  /** The digest both sides agreed on at the end of the pass (hex). */
  digest: string;
  verified: boolean;
}
