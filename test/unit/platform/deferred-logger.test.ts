// The deferred logger: pino is made only when a record passes the level,
// records logged before that are written in order with their child bindings,
// and the real logger's redaction still applies; a process that crashes
// before the real logger is there still says what waited (message and error
// only); a logger that cannot load keeps nothing.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deferredLogger } from '../../../src/platform/deferred-logger.js';
import { createLogger, type Logger } from '../../../src/platform/log.js';

function memoryLogger(level: string): { lines: Record<string, unknown>[]; loads: number; load: () => Promise<Logger> } {
  const out = { lines: [] as Record<string, unknown>[], loads: 0, load: async () => createLogger({ name: 'test', level, destination: { write: (s: string) => out.lines.push(JSON.parse(s)) } }) };
  const load = out.load;
  out.load = () => {
    out.loads++;
    return load();
  };
  return out;
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('deferredLogger', () => {
  it('never makes the real logger when nothing passes the level', async () => {
    const m = memoryLogger('warn');
    const log = deferredLogger('warn', m.load);
    log.info('not shown');
    log.debug({ a: 1 }, 'not shown either');
    log.child({ volume: 'tree' }).info('nor this');
    await settle();
    expect(m.loads).toBe(0);
    expect(m.lines).toEqual([]);
    expect(log.isLevelEnabled('warn')).toBe(true);
    expect(log.isLevelEnabled('info')).toBe(false);
    expect(log.level).toBe('warn');
  });

  it('writes the records logged while it loads, in order, with their bindings, then writes directly', async () => {
    const m = memoryLogger('info');
    const log = deferredLogger('info', m.load);
    const child = log.child({ volume: 'tree' });
    log.warn({ token: 'secret-join-token' }, 'first');
    child.info('second');
    log.debug('below the level');
    child.child({ passId: 'p1' }).error('third');
    expect(m.lines).toEqual([]);
    await settle();
    log.info('fourth');
    expect(m.loads).toBe(1);
    expect(m.lines.map((l) => l.msg)).toEqual(['first', 'second', 'third', 'fourth']);
    expect(m.lines[0]).toMatchObject({ level: 40, token: '[redacted]' });
    expect(m.lines[1]).toMatchObject({ level: 30, volume: 'tree' });
    expect(m.lines[2]).toMatchObject({ level: 50, volume: 'tree', passId: 'p1' });
    expect(m.lines[3]!.volume).toBeUndefined();
  });

  it('writes the waiting records at exit when the process crashes before the real logger is there', () => {
    // The built module (npm test builds first), in a process of its own.
    const src = pathToFileURL(fileURLToPath(new URL('../../../dist/platform/deferred-logger.js', import.meta.url))).href;
    const script = `
      const { deferredLogger } = await import(${JSON.stringify(src)});
      const log = deferredLogger('warn', () => new Promise((r) => setTimeout(r, 60_000)));
      log.info('below the level');
      log.child({ volume: 'root' }).warn({ err: new Error('disk gone'), token: 'secret-join-token' }, 'could not lower the priority');
      throw new Error('crash');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: 'could not lower the priority', err: 'disk gone' });
    expect(r.stderr).not.toContain('secret-join-token');
    expect(r.stderr).toContain('crash');
  });

  it('keeps nothing once the real logger could not load', async () => {
    let loads = 0;
    const log = deferredLogger('info', () => {
      loads++;
      return Promise.reject(new Error('no pino here'));
    });
    const write = process.stderr.write;
    const said: string[] = [];
    process.stderr.write = ((s: string) => said.push(String(s)) > 0) as typeof process.stderr.write;
    try {
      log.info('first');
      await settle();
      for (let i = 0; i < 1000; i++) log.info('dropped');
      await settle();
    } finally {
      process.stderr.write = write;
    }
    expect(loads).toBe(1);
    expect(said).toEqual(['ferry: the logger could not start: no pino here\n']);
  });

  it("refuses an unknown level with pino's own message", () => {
    const message = 'default level:chatty must be included in custom levels';
    expect(() => createLogger({ name: 'x', level: 'chatty' })).toThrow(message);
    expect(() => deferredLogger('chatty', async () => createLogger({ name: 'x' }))).toThrow(message);
  });
});
