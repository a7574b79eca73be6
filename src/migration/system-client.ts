// The agent's end of a 'system' session (layout/system-session.ts): HELLO
// {kind:'system', target: the migration id} over the ordinary TLS handshake
// (replication/session/connect.ts), the receiver's disks from WELCOME, then
// one SYSTEM_REQUEST at a time, each answered by a SYSTEM_REPLY or an ERROR
// frame (which becomes a FerryError with the receiver's code and message).
// END closes the session; the receiver unmounts the target tree and answers
// DONE. Owns the frames of this session only: what is asked and when is
// whole-server.ts's business.

import { randomUUID } from 'node:crypto';
import { FerryError, errorMessage } from '../errors/ferry-error.js';
import { FrameType, decodeJson, encodeFrame, encodeJsonFrame, frameTypeName, type RawFrame, type Welcome } from '../protocol/frames.js';
import type { FrameChannel } from '../protocol/channel.js';
import { SystemDiskSchema, SystemReplySchema, type SystemDisk, type SystemReply, type SystemRequest } from '../layout/system-session.js';
import { errorFromFrame, openClientSession } from '../replication/session/connect.js';
import type { ReceiverAddress } from '../replication/types.js';
import { agentVersion } from '../version.js';

/** How long the receiver may take to unmount and answer DONE after END. */
const CLOSE_TIMEOUT_MS = 120_000;

export interface SystemSession {
  /** The whole disks the receiver was given (`ferry receive --disk NAME=DEV`), in its order. */
  readonly disks: SystemDisk[];
  readonly welcome: Welcome;
  /** True once the connection is gone (the receiver stopped, the network failed, or close() ran). */
  readonly closed: boolean;
  /** Resolves with the reason when the connection goes away, whatever the cause. */
  whenClosed(): Promise<Error>;
  /** Sends one request and waits for its reply; an ERROR frame rejects with the receiver's code. */
  request<O extends SystemRequest['op']>(req: Extract<SystemRequest, { op: O }>, signal?: AbortSignal): Promise<Extract<SystemReply, { op: O }>>;
  /** END, then wait for DONE: the receiver has unmounted the target tree. Safe to call twice. */
  close(): Promise<void>;
  /** Drops the connection without END (the receiver cleans up on its own). */
  destroy(): void;
}

/** Parses WELCOME.kindState.disks; a receiver that sends none has no disks to lay out. */
export function disksFromWelcome(welcome: Welcome): SystemDisk[] {
  const raw = welcome.kindState?.disks;
  if (raw === undefined) throw new FerryError('FERRY_FRAME_MALFORMED', 'WELCOME of a system session carries no disks (kindState.disks)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new FerryError('FERRY_FRAME_MALFORMED', 'WELCOME kindState.disks is not JSON');
  }
  const r = SystemDiskSchema.array().safeParse(parsed);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new FerryError('FERRY_FRAME_MALFORMED', `WELCOME kindState.disks: ${issue?.path.join('.') || '(body)'}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

export async function openSystemSession(
  receiver: ReceiverAddress,
  migrationId: string,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<SystemSession> {
  const { channel, welcome } = await openClientSession(
    receiver,
    { kind: 'system', target: migrationId, passId: randomUUID(), agent: `ferry/${agentVersion()}` },
    options,
  );
  if (welcome.kind !== 'system') {
    channel.destroy();
    throw new FerryError('FERRY_KIND_UNSUPPORTED', `the receiver answered a system HELLO with a ${welcome.kind} session`);
  }
  let disks: SystemDisk[];
  try {
    disks = disksFromWelcome(welcome);
  } catch (e) {
    channel.destroy();
    throw e;
  }
  return new Session(channel, welcome, disks);
}

type Waiter = { resolve: (f: RawFrame) => void; reject: (e: Error) => void };

class Session implements SystemSession {
  private waiter: Waiter | undefined;
  /** Frames that came with nobody waiting (a reply is read by the request that asked). */
  private readonly early: RawFrame[] = [];
  private busy: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private goneError: Error | undefined;
  /** The receiver answered with an ERROR frame (and closes the session itself). */
  private refused = false;

  constructor(
    private readonly channel: FrameChannel,
    readonly welcome: Welcome,
    readonly disks: SystemDisk[],
  ) {
    channel.onFrame((f) => {
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w.resolve(f);
      else this.early.push(f);
    });
    void channel.whenClosed().then((e) => {
      this.goneError = e;
      const w = this.waiter;
      this.waiter = undefined;
      w?.reject(e);
    });
  }

  get closed(): boolean {
    return this.channel.closed;
  }

  whenClosed(): Promise<Error> {
    return this.channel.whenClosed();
  }

  private nextFrame(signal?: AbortSignal, timeoutMs?: number, what = 'a reply'): Promise<RawFrame> {
    const early = this.early.shift();
    if (early) return Promise.resolve(early);
    if (this.goneError) return Promise.reject(this.goneError);
    return new Promise<RawFrame>((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiter = undefined;
      };
      const onAbort = () => {
        settle();
        reject(new FerryError('FERRY_ABORTED', `stopped while waiting for ${what} from the receiver`));
      };
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              settle();
              reject(new FerryError('SMS.0807', `the receiver sent no ${what} within ${Math.round(timeoutMs / 1000)} s`));
            }, timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = {
        resolve: (f) => {
          settle();
          resolve(f);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      };
    });
  }

  request<O extends SystemRequest['op']>(req: Extract<SystemRequest, { op: O }>, signal?: AbortSignal): Promise<Extract<SystemReply, { op: O }>> {
    // One request at a time: a reply answers the request before it.
    const run = this.busy.then(async () => {
      if (this.closing) throw new FerryError('FERRY_SESSION_CLOSED', 'the system session is closed');
      await this.channel.send(encodeJsonFrame(FrameType.SYSTEM_REQUEST, req));
      // Laying out runs partitioning, mkfs and mounts: no time limit but the caller's signal.
      const f = await this.nextFrame(signal, undefined, `an answer to '${req.op}'`);
      if (f.type === FrameType.ERROR) {
        // The receiver ends the session after an ERROR: there is nothing left to END.
        this.refused = true;
        throw errorFromFrame(f);
      }
      if (f.type !== FrameType.SYSTEM_REPLY) throw new FerryError('FERRY_FRAME_UNEXPECTED', `expected SYSTEM_REPLY to '${req.op}', got ${frameTypeName(f.type)}`);
      const reply = decodeJson(SystemReplySchema, f.type, f.body);
      if (reply.op !== req.op) throw new FerryError('FERRY_FRAME_UNEXPECTED', `the receiver answered '${req.op}' with a '${reply.op}' reply`);
      return reply as Extract<SystemReply, { op: O }>;
    });
    this.busy = run.catch(() => undefined);
    return run;
  }

  close(): Promise<void> {
    this.closing ??= this.busy.then(async () => {
      if (this.channel.closed || this.refused) {
        this.channel.end();
        return;
      }
      try {
        // The system END carries no digest: an empty JSON body.
        await this.channel.send(encodeFrame(FrameType.END, Buffer.from('{}')));
        const f = await this.nextFrame(undefined, CLOSE_TIMEOUT_MS, 'DONE');
        if (f.type === FrameType.ERROR) throw errorFromFrame(f);
        if (f.type !== FrameType.DONE) throw new FerryError('FERRY_FRAME_UNEXPECTED', `expected DONE after END, got ${frameTypeName(f.type)}`);
      } catch (e) {
        if (e instanceof FerryError) throw e;
        throw new FerryError('FERRY_SESSION_CLOSED', `closing the system session failed: ${errorMessage(e)}`, { cause: e });
      } finally {
        this.channel.end();
      }
    });
    return this.closing;
  }

  destroy(): void {
    this.channel.destroy();
  }
}
