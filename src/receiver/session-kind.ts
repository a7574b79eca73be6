// What the receiver's server asks of a replication kind ('block', 'file'):
// open a session for an authenticated HELLO, take its frames, and finish or
// discard pending work when the connection goes. The server owns TLS, the
// handshake, authentication, the per-target lock and error frames; a kind
// owns everything it writes. A kind may name its own targets (the 'system'
// kind: a migration id, not a --target) and may add targets for as long as
// its session lives (DynamicTargets: one per laid-out volume).

import type { Logger } from '../platform/log.js';
import type { FrameChannel } from '../protocol/channel.js';
import type { Hello, RawFrame, SessionKind, Welcome } from '../protocol/frames.js';

export interface TargetSpec {
  name: string;
  path: string;
  /** Only sessions of this kind may open the target (dynamic targets: a volume is copied one way). */
  kind?: SessionKind;
}

/**
 * Targets a session adds to the receiver while it lives (the 'system' kind:
 * one per volume it laid out). They are looked up by HELLO and locked one
 * session per target like --target ones; the server removes whatever a
 * session left registered when it closes.
 */
export interface DynamicTargets {
  /** Adds a target; refused (FERRY_BAD_TARGET) when the name is taken by another target. */
  register(spec: TargetSpec): void;
  /** Removes a target this session registered; a session still open on it is ended first (and its close awaited). */
  unregister(name: string): Promise<void>;
}

export interface SessionContext {
  hello: Hello;
  target: TargetSpec;
  channel: FrameChannel;
  log: Logger;
  /** The receiver's data directory (state lives under DIR/targets/NAME/). */
  dataDir: string;
  /** End the session with an ERROR frame and close the connection (the error's recovery tells the agent whether to reconnect). */
  fail(err: unknown): void;
  /** Targets this session adds while it lives (removed by the server when it closes at the latest). */
  targets: DynamicTargets;
}

export interface KindSession {
  /** Fields of the WELCOME this kind fills in. */
  welcome: Pick<Welcome, 'pass' | 'resumeFrom'> & Partial<Welcome>;
  onFrame(frame: RawFrame): void;
  /** The connection is gone (or being taken over): make durable what can be, release files. */
  close(reason: Error): Promise<void>;
}

export interface SessionKindHandler {
  open(ctx: SessionContext): Promise<KindSession>;
  /**
   * For a kind whose HELLO names something other than a receiver target (the
   * 'system' kind: a migration id): the target spec for that name, or a throw
   * saying why it is refused. Its sessions are locked per kind and name.
   */
  ownTarget?(name: string, dataDir: string): TargetSpec;
}
