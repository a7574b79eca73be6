// The receiver (`ferry receive`) that runs on the intermediate instance.
// This file owns the TLS listener, the handshake (protocol version, join
// token, target lookup), the one-session-per-target lock, the targets a
// session adds while it lives (dynamic targets: the 'system' kind's volumes)
// and error frames; what a session writes belongs to its kind (session-kind.ts: block-session.ts
// for disks, file-session.ts for file trees). A bad frame or a failing
// session ends that connection only: the server keeps serving every other one.
// Until HELLO is accepted a peer is held to a HELLO-sized frame and to the
// handshake timeout, and counts against the caps of connection-limits.ts.

import type { Socket } from 'node:net';
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
  MAX_HELLO_FRAME_BYTES,
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
import { ConnectionLimits, type ConnectionLimitOptions } from './connection-limits.js';
import { receiveBuffers } from './receive-buffers.js';
import { fileKind } from './file-session.js';
import type { DynamicTargets, KindSession, SessionKindHandler, TargetSpec } from './session-kind.js';

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
  /** Caps on unauthenticated connections and the handshake timeout (defaults: DEFAULT_CONNECTION_LIMITS). */
  limits?: Partial<ConnectionLimitOptions>;
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
  /** Targets added by open sessions (DynamicTargets), with the session that added each. */
  private readonly dynamic = new Map<string, { spec: TargetSpec; owner: Active }>();
  /** One session per target: a new one takes over (the old connection may be half-open). */
  private readonly active = new Map<string, Active>();
  private readonly sockets = new Set<TLSSocket>();
  /** Every accepted TCP connection, TLS or not yet (closed with the receiver). */
  private readonly rawSockets = new Set<Socket>();
  private readonly limits: ConnectionLimits;
  private readonly tokenDigest: Buffer;

  constructor(options: ReceiverOptions) {
    this.options = options;
    this.kinds = { block: blockKind, file: fileKind, ...options.kinds };
    for (const t of options.targets) this.targets.set(t.name, t);
    this.tokenDigest = createHash('sha256').update(options.token).digest();
    this.limits = new ConnectionLimits(options.limits ?? {}, options.log);
    this.server = createServer({
      handshakeTimeout: this.limits.options.handshakeTimeoutMs,
      key: options.identity.key,
      cert: options.identity.cert,
      minVersion: 'TLSv1.2',
      // AES-128-GCM first (fastest with AES-NI), and the server's order wins.
      honorCipherOrder: true,
      ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384',
    });
    // Counted (or refused) before TLS begins: a connection that never
    // handshakes must not hold a descriptor past the handshake timeout.
    this.server.on('connection', (raw: Socket) => {
      if (!this.limits.admit(raw)) return;
      this.rawSockets.add(raw);
      raw.once('close', () => this.rawSockets.delete(raw));
    });
    this.server.on('secureConnection', (socket) => this.onConnection(socket));
    // Node reports a failed or timed-out handshake here but keeps the socket open: close it.
    this.server.on('tlsClientError', (e, socket) => {
      const refused = socket.destroyed;
      socket.destroy();
      if (!refused) options.log.warn({ err: e.message, peer: `${socket.remoteAddress}:${socket.remotePort}` }, 'TLS handshake failed; connection closed');
    });
  }

  /** Starts listening; resolves with the bound port (port 0 picks a free one). */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        // Accept errors (EMFILE: out of descriptors) must not end the receiver.
        this.server.on('error', (e) =>
          this.options.log.error({ err: e.message }, 'cannot accept a connection: lower --max-connections or raise the descriptor limit (ulimit -n)'),
        );
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : this.options.port);
      });
    });
  }

  async close(): Promise<void> {
    // Connections go first: the server's close waits for every one of them to end.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    for (const s of this.rawSockets) s.destroy();
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

    // Before HELLO is accepted only a HELLO-sized frame is buffered, outside the pool;
    // a peer that sends requests without reading the replies is not read from until it does.
    const channel = new FrameChannel(socket, {
      maxFrameBytes: MAX_HELLO_FRAME_BYTES,
      onDecodeError: (e) => sendError(state === 'hello' && e instanceof FerryError ? new FerryError(e.code, `${e.message} before HELLO was accepted`) : e),
      holdReadsWhileWriteBlocked: true,
    });
    const helloTimer = setTimeout(() => {
      if (state === 'hello') sendError(new FerryError('FERRY_HANDSHAKE_TIMEOUT', `no HELLO within the handshake timeout (${this.limits.options.handshakeTimeoutMs} ms)`));
    }, this.limits.options.handshakeTimeoutMs);

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
      channel.pauseReading('opening');
      void this.openSession(hello, channel, log, sendError).then(
        (a) => {
          me = a;
          session = a.session;
          if (channel.closed) return;
          state = 'open';
          this.limits.authenticated(socket);
          channel.setFrameLimits(MAX_FRAME_BYTES, receiveBuffers);
          channel.resumeReading('opening');
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
    // Its type is checked by the schema's own rule, so that a string "1" is told it is not a number.
    const shape = HelloSchema.shape.version.safeParse(version);
    if (!shape.success) {
      const got = version === undefined ? 'no version field' : `got ${JSON.stringify(version).slice(0, 80)}`;
      throw new FerryError('FERRY_FRAME_MALFORMED', `HELLO frame: version: ${shape.error.issues[0]?.message ?? 'invalid'} (${got}); this receiver speaks ${SUPPORTED_VERSIONS.join(', ')}`);
    }
    if (!SUPPORTED_VERSIONS.includes(shape.data)) {
      throw new FerryError('FERRY_PROTOCOL_VERSION', `protocol version ${String(version)} is not supported; this receiver speaks ${SUPPORTED_VERSIONS.join(', ')}`);
    }
    const hello = decodeJson(HelloSchema, frame.type, frame.body);
    const got = createHash('sha256').update(hello.token).digest();
    if (!timingSafeEqual(got, this.tokenDigest)) throw new FerryError('SMS.0304', 'TLS/SSL authentication failed: the join token is not valid for this receiver');
    const kind = this.kinds[hello.kind];
    if (!kind) throw new FerryError('FERRY_KIND_UNSUPPORTED', `this receiver does not serve ${hello.kind}-level sessions`);
    if (!kind.ownTarget && !this.lookup(hello.target)) throw new FerryError('SMS.0411', `Disk ${hello.target} does not exist on this receiver`);
    return hello;
  }

  private lookup(name: string): TargetSpec | undefined {
    return this.targets.get(name) ?? this.dynamic.get(name)?.spec;
  }

  /** The DynamicTargets of one session: what it registers is removed when it is released at the latest. */
  private dynamicTargets(owner: Active): DynamicTargets {
    return {
      register: (spec) => {
        const held = this.dynamic.get(spec.name);
        if (this.targets.has(spec.name) || (held && held.owner !== owner)) {
          throw new FerryError('FERRY_BAD_TARGET', `target name ${spec.name} is already in use on this receiver`);
        }
        this.dynamic.set(spec.name, { spec, owner });
      },
      unregister: async (name) => {
        if (this.dynamic.get(name)?.owner !== owner) return;
        this.dynamic.delete(name);
        // A block or file session still writing into the volume ends before the volume goes away.
        const user = this.active.get(name);
        if (user) {
          user.channel.destroy();
          await user.done.catch(() => {});
        }
      },
    };
  }

  private async releaseDynamic(owner: Active): Promise<void> {
    const names = [...this.dynamic].filter(([, d]) => d.owner === owner).map(([n]) => n);
    await Promise.all(names.map((n) => this.dynamicTargets(owner).unregister(n)));
  }

  private async openSession(hello: Hello, channel: FrameChannel, log: Logger, sendError: (e: unknown) => void): Promise<Active> {
    const kind = this.kinds[hello.kind]!;
    const target = kind.ownTarget ? kind.ownTarget(hello.target, this.options.dataDir) : this.lookup(hello.target);
    // A dynamic target may have gone while this HELLO waited.
    if (!target) throw new FerryError('SMS.0411', `Disk ${hello.target} does not exist on this receiver`);
    if (target.kind && target.kind !== hello.kind) throw new FerryError('FERRY_KIND_UNSUPPORTED', `target ${target.name} takes ${target.kind}-level sessions, not ${hello.kind}-level ones`);
    // The lock's key: the target name, or 'KIND:NAME' for a kind that names its own targets.
    const key = kind.ownTarget ? `${hello.kind}:${target.name}` : target.name;
    const previous = this.active.get(key);
    if (previous) {
      log.info({ target: target.name }, 'a new session takes over the target from an older connection');
      previous.channel.destroy();
      await previous.done.catch(() => {});
    }
    let resolveDone!: () => void;
    const me: Active = { id: randomUUID(), channel, done: new Promise<void>((r) => (resolveDone = r)) };
    this.active.set(key, me);
    const release = () => {
      void this.releaseDynamic(me)
        .catch((e: unknown) => log.error({ err: errorMessage(e) }, 'removing a session\'s targets failed'))
        .finally(() => {
          if (this.active.get(key) === me) this.active.delete(key);
          resolveDone();
        });
    };
    try {
      me.session = await this.kinds[hello.kind]!.open({
        hello,
        target,
        channel,
        log: log.child({ target: target.name, kind: hello.kind }),
        dataDir: this.options.dataDir,
        fail: sendError,
        targets: this.dynamicTargets(me),
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
