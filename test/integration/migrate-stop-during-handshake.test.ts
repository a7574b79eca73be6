// `ferry migrate` stopped (SIGTERM) while the receiver has taken its HELLO
// and never answers (issue 18, point 10): the wait for WELCOME ends with the
// pass's abort, so the pass ends with FERRY_ABORTED (the stop), not with a
// handshake timeout twenty seconds later. The "receiver" is a TLS server on
// 127.0.0.1 that accepts, reads, and says nothing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateTlsIdentity, type TlsIdentity } from '../../src/platform/tls-identity.js';
import { migrateArgs } from '../helpers/block.js';
import { spawnFerry } from '../helpers/cli.js';
import { until } from '../helpers/wait.js';

describe('ferry migrate stopped while the receiver never answers HELLO', () => {
  let dir: string;
  let identity: TlsIdentity;
  let server: Server;
  let port: number;
  const helloBytes: number[] = [];
  const sockets = new Set<TLSSocket>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-silent-receiver-'));
    identity = await loadOrCreateTlsIdentity(join(dir, 'tls'), { commonName: '127.0.0.1' });
    server = createServer({ key: identity.key, cert: identity.cert }, (socket) => {
      sockets.add(socket);
      const i = helloBytes.push(0) - 1;
      socket.on('data', (d: Buffer) => (helloBytes[i]! += d.length)); // read, never answer
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends the pass with FERRY_ABORTED as soon as it is stopped', async () => {
    const source = join(dir, 'source.img');
    writeFileSync(source, Buffer.alloc(1024 * 1024, 7));
    const child = spawnFerry(migrateArgs({ host: '127.0.0.1', port, token: 'any-token', fingerprint: identity.fingerprint }, [`${source}=disk0`]));
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // The HELLO has arrived: the agent now waits for an answer that never comes.
    await until('the HELLO at the silent receiver', () => helloBytes.some((n) => n > 0), 30_000, () => stderr);
    child.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/the pass was stopped while waiting for the receiver to answer HELLO \[FERRY_ABORTED\]/);
  });
});
