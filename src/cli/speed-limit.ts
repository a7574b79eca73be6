// `ferry speed-limit get|set`: a task's time-of-day rate limits (4.2.9,
// 4.2.10). Segments are written START-END=MBITS, e.g. 00:00-08:00=20.

import type { Command } from 'commander';
import type { SpeedLimitSegment } from '../sms/schemas/index.js';
import { UsageError } from '../errors/ferry-error.js';
import { printJson, printTable, withClient, withConnection, type ConnectionOpts } from './sms-connection.js';

const SEGMENT = /^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})=(\d+)$/;

export function parseSegment(arg: string, threshold?: number): SpeedLimitSegment {
  const m = SEGMENT.exec(arg.trim());
  if (!m) throw new UsageError(`speed-limit segment ${JSON.stringify(arg)} must look like 00:00-08:00=20 (start-end=Mbit/s)`);
  return { start: m[1]!, end: m[2]!, speed: Number(m[3]), ...(threshold !== undefined ? { over_speed_threshold: threshold } : {}) };
}

export function register(program: Command): void {
  const sl = program.command('speed-limit').description("Read or set a task's time-of-day rate limits (Mbit/s).");

  withConnection(sl.command('get').argument('<task-id>').description('print the rate-limit segments of a task')).action(async (id: string, opts: ConnectionOpts) => {
    await withClient(opts, async (c) => {
      const res = await c.getSpeedLimit(id);
      if (opts.json) return printJson(res);
      if (res.speed_limit.length === 0) return void process.stdout.write('no rate limits: the task runs at full speed\n');
      printTable(res.speed_limit.map((s) => ({ start: s.start, end: s.end, mbits: s.speed, threshold: s.over_speed_threshold ?? '' })), ['start', 'end', 'mbits', 'threshold']);
    });
  });

  withConnection(
    sl
      .command('set')
      .argument('<task-id>')
      .argument('[segments...]', 'START-END=MBITS, e.g. 00:00-08:00=20 08:00-18:00=5')
      .description('replace the rate-limit segments of a task (no segments, or --clear, removes them)'),
  )
    .option('--threshold <percent>', 'over-speed threshold for every segment (0-100)')
    .option('--clear', 'remove every segment')
    .action(async (id: string, segments: string[], opts: ConnectionOpts & { threshold?: string; clear?: boolean }) => {
      const threshold = opts.threshold === undefined ? undefined : Number(opts.threshold);
      if (threshold !== undefined && !(threshold >= 0 && threshold <= 100)) throw new UsageError('--threshold must be 0 to 100');
      if (!opts.clear && segments.length === 0) throw new UsageError('give segments like 00:00-08:00=20, or --clear');
      const speed_limit = opts.clear ? [] : segments.map((s) => parseSegment(s, threshold));
      await withClient(opts, async (c) => {
        await c.setSpeedLimit(id, { speed_limit });
        process.stdout.write(`task ${id}: ${speed_limit.length} rate-limit segment(s) set\n`);
      });
    });
}
