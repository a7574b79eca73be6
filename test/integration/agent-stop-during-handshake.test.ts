// The agent daemon told to STOP while the task's receiver has taken its HELLO
// and never answers (issue 18, point 10; `ferry migrate` + SIGTERM is
// migrate-stop-during-handshake.test.ts). The lab's real receiver is replaced
// by a TLS server on its port with its certificate (so the agent's pin
// holds) that reads frames and never answers. STOP ends the wait for WELCOME
// at once: the STOP result reports the task stopped, the task is `stopped`
// when that result arrives, and the agent logs that the pass was stopped
// while waiting for the receiver to answer HELLO — not the 20 s HELLO
// timeout (SMS.0807), and not "still stopping" after the daemon gave up
// waiting for the pass.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateTlsIdentity } from '../../src/platform/tls-identity.js';
import { FrameDecoder, FrameType, HelloSchema, decodeJson, type Hello } from '../../src/protocol/frames.js';
import { loopbackTaskBody } from '../helpers/control-plane.js';
import { startAgentLab, type AgentLab, type LabAgent } from '../helpers/agent-lab.js';
import { until } from '../helpers/wait.js';

const SIZE = 4 * 1024 * 1024;

describe('ferry agent: STOP while the receiver never answers HELLO', () => {
  let lab: AgentLab;
  let agent: LabAgent;
  let silent: Server;
  const hellos: Hello[] = [];
  const sockets = new Set<TLSSocket>();
  let sourceId: string;
  let taskId: string;

  const commands = async () =>
    (await lab.cp.call('GET', `/v3/sources/${sourceId}/commands`)).body.commands as Array<{ command_name: string; result?: string; result_detail?: { msg?: string } }>;
  const action = async (operation: string) => {
    const r = await lab.cp.call('POST', `/v3/tasks/${taskId}/action`, { operation });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  };
  const agentLog = () => agent.out() + readFileSync(lab.logFile, 'utf8');

  beforeAll(async () => {
    lab = await startAgentLab({ prefix: 'ferry-agent-stop-hello-', volume: { kind: 'block', size: SIZE }, logFile: true });
    // The receiver's own identity, from its data dir: the agent's pin holds, only the answers are missing.
    const identity = await loadOrCreateTlsIdentity(join(lab.dir, 'recv'), { commonName: 'ferry-receiver' });
    expect(identity.created).toBe(false);
    expect(identity.fingerprint).toBe(lab.recv.info.fingerprint);
    await lab.recv.stop();
    silent = createServer({ key: identity.key, cert: identity.cert }, (socket) => {
      sockets.add(socket);
      const decoder = new FrameDecoder();
      socket.on('data', (d: Buffer) => {
        for (const f of decoder.push(d)) if (f.type === FrameType.HELLO) hellos.push(decodeJson(HelloSchema, f.type, f.body)); // read, never answer
      });
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      silent.once('error', reject);
      silent.listen(lab.recv.info.port, '127.0.0.1', () => resolve());
    });
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => (silent ? silent.close(r) : r(undefined)));
    await lab?.stop();
  });

  it('registers and gets a block task for the (now silent) receiver', async () => {
    agent = lab.startAgent();
    sourceId = await until('registration', async () => (await lab.state())?.sourceId, 60_000, agent.out);
    const t = await lab.cp.call(
      'POST',
      '/v3/tasks',
      loopbackTaskBody({
        name: 'stop-during-hello',
        type: 'MIGRATE_BLOCK',
        sourceId,
        vmId: 'vm-stop-hello',
        disks: [{ name: 'disk0', size: SIZE, used_size: SIZE, device_use: 'BOOT', physical_volumes: [] }],
        receiver: lab.recv.info,
      }),
    );
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    taskId = t.body.id;
  });

  it('STOP ends the wait for WELCOME: the task is stopped by STOP, not by the HELLO timeout', async () => {
    await action('start');
    // The pass has said HELLO for disk0 and now waits for an answer that never comes.
    await until('a HELLO at the silent receiver', () => hellos.length > 0, 60_000, agent.out);
    expect(hellos[0]).toMatchObject({ kind: 'block', target: 'disk0' });
    expect((await commands()).find((c) => c.command_name === 'START')).toMatchObject({ result: 'success' });
    expect((await lab.state())?.task?.status).toBe('running');

    await action('stop');
    const stop = await until('the STOP result', async () => (await commands()).find((c) => c.command_name === 'STOP' && c.result), 60_000, agent.out);
    // The daemon answers once the pass has ended (not "still stopping" after giving up on it) …
    expect(stop.result).toBe('success');
    expect(stop.result_detail?.msg).toMatch(new RegExp(`task ${taskId} stopped; acknowledged data is kept`));
    // … and by then the pass has recorded the stop.
    expect((await lab.state())?.task?.status).toBe('stopped');
    // What ended it: the STOP, during the wait for WELCOME — not the HELLO timeout.
    expect(agentLog()).toMatch(/"err":"the pass was stopped while waiting for the receiver to answer HELLO"[^\n]*"msg":"pass stopped on request"/);
    expect(agentLog()).not.toMatch(/did not answer HELLO|SMS\.0807/);
    // The agent hung up on the silent receiver, and said HELLO only once (a stop is not retried).
    await until('the agent closes its connection', () => sockets.size === 0, 60_000, agent.out);
    expect(hellos).toHaveLength(1);
    expect(agent.child.exitCode).toBeNull();
  });
});
