// `ferry migrate --limit` and `--schedule FILE` parsing.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors/ferry-error.js';
import { loadScheduleFile, parseBitRate, scheduleFromLimit } from '../../../src/replication/throttle/limit-options.js';

describe('--limit', () => {
  it('reads bits per second with decimal K/M/G suffixes', () => {
    expect(parseBitRate('50M')).toBe(50_000_000);
    expect(parseBitRate('50m')).toBe(50_000_000);
    expect(parseBitRate('1.5G')).toBe(1_500_000_000);
    expect(parseBitRate('800K')).toBe(800_000);
    expect(parseBitRate('64000')).toBe(64_000);
    expect(parseBitRate('20Mbit/s')).toBe(20_000_000);
    expect(parseBitRate('20Mbps')).toBe(20_000_000);
    expect(parseBitRate('0')).toBeNull();
  });

  it('refuses what is not a rate', () => {
    for (const bad of ['', 'fast', '-5M', '5T', '5 MB/s', '1e9']) expect(() => parseBitRate(bad)).toThrow(UsageError);
    expect(() => parseBitRate('fast')).toThrow(/--limit "fast" is not a rate.*50M/);
  });

  it('becomes a flat schedule in Mbit/s', () => {
    expect(scheduleFromLimit('50M').at(0).limitMbps).toBe(50);
    expect(scheduleFromLimit('0').at(0).limitMbps).toBeNull();
  });
});

describe('--schedule FILE', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const file = async (name: string, text: string) => {
    dir ||= await mkdtemp(join(tmpdir(), 'ferry-schedule-'));
    const p = join(dir, name);
    await writeFile(p, text);
    return p;
  };

  it('reads the body of POST /v3/tasks/{id}/speed-limit', async () => {
    const p = await file('ok.json', JSON.stringify({ speed_limit: [{ start: '8:00', end: '18:00', speed: 20 }, { start: '18:00', end: '8:00', speed: 200 }] }));
    const s = await loadScheduleFile(p);
    expect(s.at(9 * 3_600_000).limitMbps).toBe(20);
    expect(s.at(3 * 3_600_000).limitMbps).toBe(200);
  });

  it('uses --limit for the gaps', async () => {
    const p = await file('gap.json', JSON.stringify({ speed_limit: [{ start: '8:00', end: '18:00', speed: 20 }] }));
    expect((await loadScheduleFile(p, 75)).at(20 * 3_600_000).limitMbps).toBe(75);
  });

  it('names the file and the problem', async () => {
    await expect(loadScheduleFile(await file('bad.json', '{ speed_limit: '))).rejects.toThrow(/bad\.json: not JSON/);
    await expect(loadScheduleFile(await file('t.json', JSON.stringify({ speed_limit: [{ start: '8:00', end: '25:00', speed: 1 }] })))).rejects.toThrow(
      /t\.json: speed_limit\[0\]\.end "25:00".*\[SMS\.6405\]/,
    );
    await expect(loadScheduleFile(join(tmpdir(), 'ferry-no-such-schedule.json'))).rejects.toThrow(/cannot read the file/);
  });
});
