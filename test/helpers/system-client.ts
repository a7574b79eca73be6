// A tiny client of the receiver's 'system' session for tests: HELLO{kind:
// 'system'} over real TLS (replication/session/connect.ts), then one
// SYSTEM_REQUEST at a time, each answered by a SYSTEM_REPLY or an ERROR frame
// (returned as the FerryError it reports), and END → DONE. The production
// client is migration/'s.

import { randomUUID } from 'node:crypto';
import { errorFromFrame, openClientSession, type ClientSession } from '../../src/replication/session/connect.js';
import { FrameType, encodeFrame, encodeJsonFrame, type RawFrame } from '../../src/protocol/frames.js';
import { SystemDiskSchema, SystemReplySchema, type SystemDisk, type SystemReply, type SystemRequest } from '../../src/layout/system-session.js';
import type { FerryError } from '../../src/errors/ferry-error.js';
import type { ReceiverInfo } from './block.js';

export class SystemClient {
  private readonly frames: RawFrame[] = [];
  private waiting: ((f: RawFrame) => void) | undefined;

  private constructor(
    private readonly session: ClientSession,
    readonly disks: SystemDisk[],
  ) {
    session.channel.onFrame((f) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(f);
      else this.frames.push(f);
    });
  }

  static async open(r: ReceiverInfo, id: string): Promise<SystemClient> {
    const session = await openClientSession({ host: '127.0.0.1', port: r.port, token: r.token, fingerprint: r.fingerprint }, { kind: 'system', target: id, passId: randomUUID() });
    const disks = SystemDiskSchema.array().parse(JSON.parse(session.welcome.kindState?.disks ?? '[]'));
    return new SystemClient(session, disks);
  }

  private next(): Promise<RawFrame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      void this.session.channel.whenClosed().then((e) => reject(new Error(`connection closed before a reply: ${e.message}`)));
    });
  }

  /** Sends one request; resolves with the reply, or with the error the receiver answered. */
  async request(req: SystemRequest): Promise<SystemReply | FerryError> {
    await this.session.channel.send(encodeJsonFrame(FrameType.SYSTEM_REQUEST, req));
    return this.answer();
  }

  /** Sends a raw SYSTEM_REQUEST body (for malformed requests). */
  async requestRaw(body: string): Promise<SystemReply | FerryError> {
    await this.session.channel.send(encodeFrame(FrameType.SYSTEM_REQUEST, Buffer.from(body, 'utf8')));
    return this.answer();
  }

  private async answer(): Promise<SystemReply | FerryError> {
    const f = await this.next();
    if (f.type === FrameType.ERROR) return errorFromFrame(f);
    if (f.type !== FrameType.SYSTEM_REPLY) throw new Error(`unexpected frame 0x${f.type.toString(16)}`);
    return SystemReplySchema.parse(JSON.parse(f.body.toString('utf8')));
  }

  /** END → DONE: the receiver has unmounted everything when this resolves. */
  async end(): Promise<void> {
    await this.session.channel.send(encodeJsonFrame(FrameType.END, {}));
    const f = await this.next();
    if (f.type !== FrameType.DONE) throw new Error(`END answered with 0x${f.type.toString(16)}: ${f.body.toString('utf8')}`);
    this.session.channel.destroy();
  }

  close(): void {
    this.session.channel.destroy();
  }
}
