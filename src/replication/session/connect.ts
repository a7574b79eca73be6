// The agent's end of a session: TLS connect, pin the receiver's certificate
// by fingerprint, present HELLO (protocol version, join token, target, kind)
// and wait for WELCOME or ERROR. After the handshake the caller owns the
// channel's frames; an ERROR frame from the receiver becomes a FerryError
// with the receiver's code. Both the connect and the wait for WELCOME end at
// once when the pass's signal aborts (STOP), and after `timeoutMs` each.

import { connect, type TLSSocket } from 'node:tls';
import { FerryError, errorMessage, receivedCode } from '../../errors/ferry-error.js';
import { assertPinnedPeer } from '../../platform/tls-identity.js';
import type { ReceiverAddress } from '../types.js';
import { FrameChannel } from '../../protocol/channel.js';
import {
  ErrorFrameSchema,
  FrameType,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  WelcomeSchema,
  decodeJson,
  encodeJsonFrame,
  frameTypeName,
  type Hello,
  type RawFrame,
  type Welcome,
} from '../../protocol/frames.js';

export interface ClientSession {
  channel: FrameChannel;
  welcome: Welcome;
}

export type HelloFields = Omit<Hello, 'protocol' | 'version' | 'token'>;

/**
 * Turns an ERROR frame body into the error it reports: the receiver's code
 * verbatim, and its word on whether to reconnect (a receiver that does not
 * say leaves it to the code's entry in errors/codes.ts).
 */
export function errorFromFrame(frame: RawFrame): FerryError {
  try {
    const e = decodeJson(ErrorFrameSchema, frame.type, frame.body);
    return new FerryError(receivedCode(e.code), `receiver: ${e.message}`, { details: { fatal: e.fatal }, recovery: e.recovery });
  } catch (e) {
    return new FerryError('FERRY_FRAME_MALFORMED', `receiver sent a malformed ERROR frame: ${errorMessage(e)}`);
  }
}

export async function openClientSession(
  receiver: ReceiverAddress,
  hello: HelloFields,
  options: { signal?: AbortSignal; timeoutMs?: number; version?: number } = {},
): Promise<ClientSession> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const signal = options.signal;
  const aborted = (while_: string) => new FerryError('FERRY_ABORTED', `the pass was stopped while ${while_}`);
  if (signal?.aborted) throw aborted(`connecting to the receiver at ${receiver.host}:${receiver.port}`);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({
      host: receiver.host,
      port: receiver.port,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      servername: /^[\d.]+$|:/.test(receiver.host) ? undefined : receiver.host,
    });
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      s.destroy();
      reject(new FerryError('SMS.0807', `timed out connecting to the receiver at ${receiver.host}:${receiver.port}`));
    }, timeoutMs);
    const onAbort = () => {
      clearTimeout(timer);
      s.destroy();
      reject(aborted(`connecting to the receiver at ${receiver.host}:${receiver.port}`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    s.once('secureConnect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      try {
        assertPinnedPeer(s, receiver.fingerprint);
      } catch (e) {
        s.destroy();
        reject(e);
        return;
      }
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(new FerryError('SMS.0807', `cannot reach the receiver at ${receiver.host}:${receiver.port}: ${e.message}`, { cause: e }));
    });
  });
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 15_000);

  let failHandshake: (e: Error) => void = () => {};
  const channel = new FrameChannel(socket, { onDecodeError: (e) => failHandshake(e) });
  const welcome = await new Promise<Welcome>((resolve, reject) => {
    const timer = setTimeout(() => fail(new FerryError('SMS.0807', `the receiver did not answer HELLO within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = () => fail(aborted('waiting for the receiver to answer HELLO'));
    const settle = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (e: Error) => {
      settle();
      channel.destroy();
      reject(e);
    };
    failHandshake = fail;
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    channel.onFrame((frame) => {
      settle();
      if (frame.type === FrameType.WELCOME) {
        try {
          resolve(decodeJson(WelcomeSchema, frame.type, frame.body));
        } catch (e) {
          fail(e as Error);
        }
      } else if (frame.type === FrameType.ERROR) fail(errorFromFrame(frame));
      else fail(new FerryError('FERRY_FRAME_UNEXPECTED', `expected WELCOME, got ${frameTypeName(frame.type)}`));
    });
    void channel.whenClosed().then((e) => fail(e));
    const full: Hello = { protocol: PROTOCOL_NAME, version: options.version ?? PROTOCOL_VERSION, token: receiver.token, ...hello };
    channel.send(encodeJsonFrame(FrameType.HELLO, full)).catch(fail);
  });
  return { channel, welcome };
}
