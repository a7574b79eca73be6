// The receiver (`ferry receive`) that runs on the intermediate instance.
// This file owns the TLS listener, the handshake (protocol version, join
// token, target lookup), the one-session-per-target lock and error frames;
// what a session writes belongs to its kind (session-kind.ts: block-session.ts
// for disks, file-session.ts for file trees). A bad frame or a failing
// session ends that connection only: the server keeps serving every other one.

import { createServer, type Server, type TLSSocket } from 'node:tls';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { FerryError, errorMessage, recoveryOf } from '../errors/ferry-error.js';
import type { Logger } from '../platform/log.js';
import type { TlsIdentity } from '../platform/tls-identity.js';
import { FrameChannel } from '../protocol/channel.js';
import {
  FrameType,
  HelloSchema,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
  decodeJson,
  encodeJsonFrame,
  frameTypeName,
  type ErrorFrame,
  type Hello,
  type RawFrame,
  type SessionKind,
  type Welcome,
} from '../protocol/frames.js';
import { blockKind } from './block-session.js';
import { receiveBuffers } from './receive-buffers.js';
import { fileKind } from './file-session.js';
import type { KindSession, SessionKindHandler, TargetSpec } from './session-kind.js';

const HELLO_TIMEOUT_MS = 15_000;

export interface ReceiverOptions {
  host: string;
  port: number;
  dataDir: string;
  identity: TlsIdentity;
  token: string;
  targets: TargetSpec[];
  log: Logger;
  /** Extra kinds (e.g. 'file'); 'block' is built in. */
  kinds?: Partial<Record<SessionKind, SessionKindHandler>>;
}

interface Active {
  id: string;
  channel: FrameChannel;
  session?: KindSession;
  done: Promise<void>;
}

export class Receiver {
  private readonly options: ReceiverOptions;
  private readonly server: Server;
  private readonly kinds: Partial<Record<SessionKind, SessionKindHandler>>;
  private readonly targets = new Map<string, TargetSpec>();
  /** One session per target: a new one takes over (the old connection may be half-open). */
  private readonly active = new Map<string, Active>();
  private readonly sockets = new Set<TLSSocket>();
  private readonly tokenDigest: Buffer;

  constructor(options: ReceiverOptions) {
    this.options = options;
    this.kinds = { block: blockKind, file: fileKind, ...options.kinds };
    for (const t of options.targets) this.targets.set(t.name, t);
    this.tokenDigest = createHash('sha256').update(options.token).digest();
    this.server = createServer({
      key: options.identity.key,
      cert: options.identity.cert,
      minVersion: 'TLSv1.2',
      // AES-128-GCM first (fastest with AES-NI), and the server's order wins.
      honorCipherOrder: true,
      ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384',
    });
    this.server.on('secureConnection', (socket) => this.onConnection(socket));
    this.server.on('tlsClientError', (e) => options.log.warn({ err: e.message }, 'TLS handshake failed'));
  }

  /** Starts listening; resolves with the bound port (port 0 picks a free one). */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : this.options.port);
      });
    });
  }

  async close(): Promise<void> {
    // Connections go first: the server's close waits for every one of them to end.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    await Promise.all([...this.active.values()].map((a) => a.done));
  }

  private onConnection(socket: TLSSocket): void {
    const log = this.options.log.child({ peer: `${socket.remoteAddress}:${socket.remotePort}` });
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    let state: 'hello' | 'opening' | 'open' | 'closed' = 'hello';
    let session: KindSession | undefined;
    let targetName: string | undefined;
    let me: Active | undefined;

    // Every error ends the session (fatal); its recovery tells the agent whether reconnecting can help.
    const sendError = (err: unknown) => {
      const code = err instanceof FerryError ? err.code : 'SMS.0805';
      const message = errorMessage(err);
      log.warn({ code, target: targetName }, `session error: ${message}`);
      if (channel.closed) return;
      const body: ErrorFrame = { code, message: message.slice(0, 4000), fatal: true, recovery: recoveryOf(err) };
      channel.end(encodeJsonFrame(FrameType.ERROR, body));
    };

    const channel = new FrameChannel(socket, { maxFrameBytes: MAX_FRAME_BYTES, onDecodeError: (e) => sendError(e), pool: receiveBuffers });
    const helloTimer = setTimeout(() => {
      if (state === 'hello') sendError(new FerryError('FERRY_HANDSHAKE_TIMEOUT', 'no HELLO within the handshake timeout'));
    }, HELLO_TIMEOUT_MS);

    channel.onFrame((frame: RawFrame) => {
      if (state === 'open') {
        session!.onFrame(frame);
        return;
      }
      if (state !== 'hello') {
        sendError(new FerryError('FERRY_FRAME_UNEXPECTED', `${frameTypeName(frame.type)} frame before WELCOME`));
        return;
      }
      state = 'opening';
      clearTimeout(helloTimer);
      let hello: Hello;
      try {
        hello = this.checkHello(frame);
      } catch (e) {
        sendError(e);
        return;
      }
      targetName = hello.target;
      socket.pause();
      void this.openSession(hello, channel, log, sendError).then(
        (a) => {
          me = a;
          session = a.session;
          if (channel.closed) return;
          state = 'open';
          socket.resume();
        },
        (e: unknown) => {
          state = 'closed';
          sendError(e);
        },
      );
    });

    void channel.whenClosed().then(async (reason) => {
      clearTimeout(helloTimer);
      this.sockets.delete(socket);
      state = 'closed';
      socket.destroy();
      if (me) {
        await me.done.catch(() => {});
      }
      log.debug({ target: targetName, reason: reason.message }, 'connection closed');
    });
  }

  private checkHello(frame: RawFrame): Hello {
    if (frame.type !== FrameType.HELLO) {
      throw new FerryError('FERRY_FRAME_UNEXPECTED', `the first frame must be HELLO, got ${frameTypeName(frame.type)}`);
    }
    // Read the version before the full schema, so an unknown version gets its own error.
    let version: unknown;
    try {
      version = (JSON.parse(frame.body.toString('utf8')) as { version?: unknown }).version;
    } catch {
      throw new FerryError('FERRY_FRAME_MALFORMED', 'HELLO body is not JSON');
    }
    if (typeof version !== 'number' || !SUPPORTED_VERSIONS.includes(version)) {
      throw new FerryError('FERRY_PROTOCOL_VERSION', `protocol version ${String(version)} is not supported; this receiver speaks ${SUPPORTED_VERSIONS.join(', ')}`);
    }
    const hello = decodeJson(HelloSchema, frame.type, frame.body);
    const got = createHash('sha256').update(hello.token).digest();
    if (!timingSafeEqual(got, this.tokenDigest)) throw new FerryError('SMS.0304', 'TLS/SSL authentication failed: the join token is not valid for this receiver');
    if (!this.targets.has(hello.target)) throw new FerryError('SMS.0411', `Disk ${hello.target} does not exist on this receiver`);
    if (!this.kinds[hello.kind]) throw new FerryError('FERRY_KIND_UNSUPPORTED', `this receiver does not serve ${hello.kind}-level sessions`);
    return hello;
  }

  private async openSession(hello: Hello, channel: FrameChannel, log: Logger, sendError: (e: unknown) => void): Promise<Active> {
    const target = this.targets.get(hello.target)!;
    const previous = this.active.get(target.name);
    if (previous) {
      log.info({ target: target.name }, 'a new session takes over the target from an older connection');
      previous.channel.destroy();
      await previous.done.catch(() => {});
    }
    let resolveDone!: () => void;
    const me: Active = { id: randomUUID(), channel, done: new Promise<void>((r) => (resolveDone = r)) };
    this.active.set(target.name, me);
    const release = () => {
      if (this.active.get(target.name) === me) this.active.delete(target.name);
      resolveDone();
    };
    try {
      me.session = await this.kinds[hello.kind]!.open({
        hello,
        target,
        channel,
        log: log.child({ target: target.name, kind: hello.kind }),
        dataDir: this.options.dataDir,
        fail: sendError,
      });
    } catch (e) {
      release();
      throw e;
    }
    const session = me.session;
    void channel.whenClosed().then((reason) => session.close(reason).catch((e: unknown) => log.error({ err: errorMessage(e) }, 'session close failed')).finally(release));
    const welcome: Welcome = {
      version: PROTOCOL_VERSION,
      kind: hello.kind,
      target: target.name,
      sessionId: me.id,
      maxFrameBytes: MAX_FRAME_BYTES,
      ...session.welcome,
    };
    await channel.send(encodeJsonFrame(FrameType.WELCOME, welcome));
    log.info({ target: target.name, kind: hello.kind, pass: welcome.pass, resumeFrom: welcome.resumeFrom }, 'session open');
    return me;
  }
}

export function newJoinToken(): string {
  return randomBytes(24).toString('base64url');
}
