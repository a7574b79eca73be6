// What the receiver's server asks of a replication kind ('block', 'file'):
// open a session for an authenticated HELLO, take its frames, and finish or
// discard pending work when the connection goes. The server owns TLS, the
// handshake, authentication, the per-target lock and error frames; a kind
// owns everything it writes.

import type { Logger } from '../platform/log.js';
import type { FrameChannel } from '../protocol/channel.js';
import type { Hello, RawFrame, Welcome } from '../protocol/frames.js';

export interface TargetSpec {
  name: string;
  path: string;
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
}
