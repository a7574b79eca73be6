// `ferry migrate --schedule` on loopback: a 20 Mbit/s segment, then a
// 100 Mbit/s one, during a single pass. The wire is measured by a TCP
// forwarder between agent and receiver (TLS records and all). The agent's
// clock is shifted with FERRY_CLOCK_OFFSET_MS so that the 12:00 boundary
// falls ~12 s into the pass instead of waiting for noon.
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateArgs, parseSummaries, sha256Of, startReceiver, type RunningReceiver } from '../helpers/block.js';
import { runFerry } from '../helpers/cli.js';
import { startWireMeter, type WireMeter } from '../helpers/wire-meter.js';

const MiB = 1024 * 1024;
// Random (incompressible) data: ~12 s at 20 Mbit/s (30 MB), then > 11 s at 100 Mbit/s.
const SIZE = 184 * MiB;
const LEAD_MS = 12_000;

describe('ferry migrate with a time-of-day schedule', () => {
  let dir: string;
  let recv: RunningReceiver;
  let meter: WireMeter;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-throttle-'));
    const fd = openSync(join(dir, 'source.img'), 'w');
    for (let off = 0; off < SIZE; off += 8 * MiB) writeSync(fd, randomBytes(8 * MiB), 0, 8 * MiB, off);
    closeSync(fd);
    writeFileSync(join(dir, 'small.img'), randomBytes(32 * MiB));
    recv = await startReceiver(join(dir, 'recv'), [`disk0=${join(dir, 'target.img')}`, `disk1=${join(dir, 'small-target.img')}`]);
    meter = await startWireMeter({ host: '127.0.0.1', port: recv.info.port });
  });

  afterAll(async () => {
    await meter?.close();
    await recv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds 20 then 100 Mbit/s within 5% over 10 s windows and switches within 1 s of the boundary', async () => {
    const schedule = join(dir, 'schedule.json');
    writeFileSync(
      schedule,
      JSON.stringify({
        speed_limit: [
          { start: '0:00', end: '12:00', speed: 20 },
          { start: '12:00', end: '23:59', speed: 100 },
        ],
      }),
    );
    const t0 = Date.now();
    const noon = new Date(t0);
    noon.setHours(12, 0, 0, 0);
    // The agent's local time is 11:59:48 now; the boundary falls at t0 + 12 s real time.
    const offset = noon.getTime() - (t0 + LEAD_MS);
    const boundary = t0 + LEAD_MS;
    const r = await runFerry([...migrateArgs(recv.info, [`${join(dir, 'source.img')}=disk0`], meter.port), '--schedule', schedule], {
      env: { FERRY_CLOCK_OFFSET_MS: String(offset) },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [s] = parseSummaries(r.stdout);
    expect(s).toMatchObject({ volume: 'disk0', pass: 'full', totalBytes: SIZE });
    expect(await sha256Of(join(dir, 'target.img'))).toBe(await sha256Of(join(dir, 'source.img')));

    const mbps = (a: number, b: number) => (meter.bytesBetween(a, b) * 8) / 1e6 / ((b - a) / 1000);
    const slow = mbps(boundary - 10_000, boundary);
    const fast = mbps(boundary + 1_000, boundary + 11_000);
    // The switch: the centre of the first 1 s window (50 ms steps) whose rate is past the midpoint (60 Mbit/s).
    let sw = Number.NaN;
    for (let t = boundary - 5_000; t < boundary + 5_000; t += 50) {
      if (mbps(t, t + 1_000) > 60) {
        sw = t + 500;
        break;
      }
    }
    const last = meter.samples.at(-1)![0];
    console.log(
      `wire: ${slow.toFixed(2)} Mbit/s in [B-10 s, B), ${fast.toFixed(2)} Mbit/s in [B+1 s, B+11 s); switch at B${sw - boundary >= 0 ? '+' : ''}${sw - boundary} ms; ` +
        `pass ended at B+${((last - boundary) / 1000).toFixed(1)} s; ${(s!.bytesOnWire / MiB).toFixed(1)} MiB on the wire`,
    );
    expect(last).toBeGreaterThan(boundary + 11_000); // the fast window is fully inside the pass
    expect(Math.abs(slow - 20) / 20).toBeLessThan(0.05);
    expect(Math.abs(fast - 100) / 100).toBeLessThan(0.05);
    expect(Math.abs(sw - boundary)).toBeLessThanOrEqual(1_000);
  });

  it('--limit 80M holds a flat limit', async () => {
    const from = meter.samples.length;
    const r = await runFerry([...migrateArgs(recv.info, [`${join(dir, 'small.img')}=disk1`], meter.port), '--limit', '80M']);
    expect(r.code).toBe(0);
    const samples = meter.samples.slice(from);
    const bytes = samples.reduce((acc, [, n]) => acc + n, 0);
    // Steady state: from the 4th MiB to the last-but-one (past the handshake and the first burst).
    const when = (n: number) => {
      let sum = 0;
      for (const [t, k] of samples) if ((sum += k) >= n) return t;
      return Number.NaN;
    };
    const a = when(4 * MiB);
    const b = when(bytes - MiB);
    const steady = ((bytes - 5 * MiB) * 8) / 1e6 / ((b - a) / 1000);
    console.log(`--limit 80M: ${(bytes / MiB).toFixed(1)} MiB on the wire, ${steady.toFixed(2)} Mbit/s from the 4th MiB to the last-but-one`);
    expect(bytes).toBeGreaterThan(32 * MiB);
    expect(Math.abs(steady - 80) / 80).toBeLessThan(0.05);
    expect(await sha256Of(join(dir, 'small-target.img'))).toBe(await sha256Of(join(dir, 'small.img')));
  });

  it('refuses a bad schedule or limit with exit 2, naming the problem', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ speed_limit: [{ start: '8:00', end: '12:00', speed: 20 }, { start: '11:00', end: '13:00', speed: 5 }] }));
    const r = await runFerry([...migrateArgs(recv.info, [`${join(dir, 'source.img')}=disk0`], meter.port), '--schedule', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.json: speed_limit\[0\] \(8:00-12:00\) and speed_limit\[1\] \(11:00-13:00\) overlap at 11:00.*SMS\.9001/);
    const l = await runFerry([...migrateArgs(recv.info, [`${join(dir, 'source.img')}=disk0`], meter.port), '--limit', 'fast']);
    expect(l.code).toBe(2);
    expect(l.stderr).toMatch(/--limit "fast" is not a rate/);
  });
});
