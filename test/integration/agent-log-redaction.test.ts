// The agent never logs its access key (issue 18, point 11), even when the
// control plane puts it in an error message: a small HTTPS control plane on
// 127.0.0.1 (pinned by fingerprint, as an operator would) refuses every
// registration with an SMS error body that echoes the AK in error_msg,
// error_param and details, and the Authorization header (which names the AK)
// in error_msg. A real `ferry agent` retries and logs each refusal; neither
// its log file nor its stdout/stderr may contain the AK or the SK, while the
// refusal itself (its code) is logged.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateTlsIdentity } from '../../src/platform/tls-identity.js';
import { spawnFerry } from '../helpers/cli.js';

const AK = 'FERRYECHOAK7Q2X9';
const SK = 'echo-test-secret-key-0001';

let dir: string;
let server: Server;
let port: number;
let fingerprint: string;
const seen: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-agent-redaction-'));
  const id = await loadOrCreateTlsIdentity(join(dir, 'tls'), { commonName: 'echoing-control-plane', altNames: ['127.0.0.1'] });
  fingerprint = id.fingerprint;
  server = createServer({ key: id.key, cert: id.cert }, (req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}`);
      const msg = `Source server registration failed. Cause: access key ${AK} may not register sources (Authorization: ${req.headers.authorization})`;
      const body = { error_code: 'SMS.0502', error_msg: msg, error_param: [AK], details: [{ error_code: 'SMS.0502', error_msg: `unknown access key ${AK}` }] };
      res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => server?.close(() => r()));
  server?.closeAllConnections();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('agent log redaction', () => {
  it('keeps the access key out of its log file and stdout when the control plane echoes it', async () => {
    const logFile = join(dir, 'logs', 'agent.log');
    mkdirSync(join(dir, 'src'));
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      [
        'control_plane:',
        `  endpoint: https://127.0.0.1:${port}`,
        `  auth: {ak: ${AK}, sk: ${SK}}`,
        `  fingerprint: ${fingerprint}`,
        `data_dir: ${join(dir, 'agent-data')}`,
        'poll_interval: 0.5',
        'niceness: {cpu: 0}',
        'log:',
        '  level: debug',
        `  file: ${logFile}`,
        'volumes:',
        `  - {source: ${join(dir, 'src')}, target: tree, kind: file}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    chmodSync(config, 0o600);

    const agent = spawnFerry(['agent', '--config', config]);
    let out = '';
    agent.stdout.on('data', (b: Buffer) => (out += b.toString()));
    agent.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));
    try {
      // Two refusals logged: the echo reached the agent and went through its logging.
      const deadline = Date.now() + 60_000;
      while (out.split('\n').filter((l) => l.includes('SMS.0502')).length < 2) {
        if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`the agent did not log two refusals; it wrote:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      agent.kill('SIGTERM');
      setTimeout(() => agent.kill('SIGKILL'), 10_000).unref();
      await exited;
    }
    expect(seen.filter((r) => r.startsWith('POST /v3/sources')).length).toBeGreaterThanOrEqual(2);
    const file = readFileSync(logFile, 'utf8');
    for (const [where, text] of [['log file', file], ['stdout/stderr', out]] as const) {
      expect(text, where).toMatch(/SMS\.0502/);
      expect(text, where).toContain('[redacted]');
      expect(text.includes(AK), `the AK appears in the agent's ${where}`).toBe(false);
      expect(text.includes(SK), `the SK appears in the agent's ${where}`).toBe(false);
    }
  });
});
