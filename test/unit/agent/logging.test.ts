// Agent logging: the rotating log file keeps at most max_files files of about
// max_size bytes, and every line is scrubbed of registered secrets, even one
// that slips into a free-text message; UPLOAD_LOG's archive is one LZ4 frame
// holding a tar of the logs.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decompressFrame } from 'lz4-napi';
import { AgentLogging } from '../../../src/agent/logging.js';
import { buildLogBundle } from '../../../src/agent/log-bundle.js';
import { RotatingFile } from '../../../src/platform/rotating-file.js';

describe('agent logging', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-logging-'));
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  it('rotates by size and keeps max_files files, mode 0600', async () => {
    const f = new RotatingFile(join(dir, 'logs', 'agent.log'), { maxBytes: 1000, maxFiles: 3 });
    for (let i = 0; i < 100; i++) f.write(`${'x'.repeat(90)} ${String(i).padStart(3, '0')}\n`);
    f.close();
    expect((await readdir(join(dir, 'logs'))).sort()).toEqual(['agent.log', 'agent.log.1', 'agent.log.2']);
    for (const name of ['agent.log', 'agent.log.1', 'agent.log.2']) {
      const st = await stat(join(dir, 'logs', name));
      expect(st.size).toBeLessThanOrEqual(1000);
      expect(st.mode & 0o777).toBe(0o600);
    }
    expect(await readFile(join(dir, 'logs', 'agent.log'), 'utf8')).toMatch(/ 099\n$/);
  });

  it('scrubs secrets from every line and from the uploaded archive', async () => {
    const logging = new AgentLogging({ level: 'info', file: join(dir, 'agent.log'), secrets: ['s3cr3t-password'] });
    logging.addSecret('join-token-123456');
    logging.log.info({ password: 'other-password-x' }, 'login with s3cr3t-password failed');
    logging.log.warn({ detail: 'token join-token-123456 refused' }, 'receiver said no');
    const text = await readFile(join(dir, 'agent.log'), 'utf8');
    expect(text).not.toMatch(/s3cr3t-password|join-token-123456|other-password-x/);
    expect(text.match(/\[redacted\]/g)?.length).toBe(3);
    const archive = await buildLogBundle({ logFiles: logging.logFiles(), recentLines: logging.recentLines(), scrub: (t) => logging.scrub(t) });
    logging.close();
    const tar = (await decompressFrame(archive)).toString('latin1');
    expect(tar).toContain('agent.log');
    expect(tar).toContain('receiver said no');
    expect(tar).not.toContain('s3cr3t-password');
  });

  it('packs the in-memory lines when there is no log file', async () => {
    const logging = new AgentLogging({ level: 'info' });
    logging.log.info('only in memory');
    const tar = (await decompressFrame(await buildLogBundle({ logFiles: [], recentLines: logging.recentLines(), scrub: (t) => t }))).toString('latin1');
    expect(tar).toContain('agent-recent.log');
    expect(tar).toContain('only in memory');
  });

  it('carries the current source id once per line, and drops it when forgotten', async () => {
    const logging = new AgentLogging({ level: 'info' });
    logging.log.info('before registration');
    logging.sourceId = 'src-1';
    const child = logging.log.child({ taskId: 't-1' });
    child.info('in a task');
    logging.sourceId = 'src-2';
    child.info('after re-registration');
    logging.sourceId = undefined;
    logging.log.info('after DELETE');
    const lines = logging.recentLines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.sourceId, l.taskId])).toEqual([
      [undefined, undefined],
      ['src-1', 't-1'],
      ['src-2', 't-1'],
      [undefined, undefined],
    ]);
    for (const l of logging.recentLines()) expect(l.match(/"sourceId"/g)?.length ?? 0).toBeLessThanOrEqual(1);
  });
});
