// `ferry migrate`: one pass per volume straight to a receiver, no control
// plane. Wiring only: parsing, then replication/run-pass.ts per volume
// (block devices and file trees alike), then the summary.

import type { Command } from 'commander';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FerryError, UsageError } from '../errors/ferry-error.js';
import type { PassSummary, VolumePlan, VolumeProgress } from '../replication/types.js';

function parseVolumeSpec(spec: string, flag = '--block'): { source: string; target: string } {
  const i = spec.lastIndexOf('=');
  if (i <= 0 || i === spec.length - 1) throw new UsageError(`${flag} wants SRC=NAME, got '${spec}'`);
  return { source: spec.slice(0, i), target: spec.slice(i + 1) };
}

function defaultStateDir(): string {
  if (process.env.FERRY_STATE_DIR) return process.env.FERRY_STATE_DIR;
  if (process.env.XDG_STATE_HOME) return join(process.env.XDG_STATE_HOME, 'ferry', 'migrate');
  try {
    return join(homedir(), '.local', 'state', 'ferry', 'migrate');
  } catch {
    // No HOME and no passwd entry (a minimal root, an empty chroot): this
    // default is computed for every command, so it must not throw.
    return '/var/lib/ferry/migrate';
  }
}

function fmt(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function register(program: Command): void {
  program
    .command('migrate')
    .description('Replicate volumes straight to a receiver (one pass: full, or delta when the receiver holds data).')
    .requiredOption('--to <host:port>', 'the receiver')
    .requiredOption('--token <token>', 'the receiver join token')
    .requiredOption('--fingerprint <sha256>', "the receiver certificate's SHA-256 fingerprint (pinned)")
    .option('--block <src=name>', 'a block device or image file and its receiver target name (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--files <srcdir=name>', 'a directory tree (one file system) and its receiver target name (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--exclude <glob>', 'leave out paths matching this glob in --files trees (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--state <dir>', 'where file-level manifests are kept between passes', defaultStateDir())
    .option('--full', 'file level: send everything, ignoring the manifest of the last pass', false)
    .option('--verify', 'ask the receiver to re-read its target and compare (consistency check)', false)
    .option('--json', 'print the pass summaries as JSON on stdout', false)
    .option('--limit <rate>', 'limit the wire rate: bits per second with K/M/G suffix, e.g. 50M (0 = unlimited); with --schedule, the rate between segments')
    .option('--schedule <file>', 'time-of-day limits: a JSON file with the body of POST /v3/tasks/{id}/speed-limit, applied by local time')
    .option('--nice <n>', 'run at this CPU nice value (0-19; Windows: below-normal priority when > 0)')
    .option('--ionice <class[:level]>', 'Linux I/O priority: best-effort[:0-7] or idle')
    .action(async (opts: { to: string; token: string; fingerprint: string; block: string[]; files: string[]; exclude: string[]; state: string; full: boolean; verify: boolean; json: boolean; limit?: string; schedule?: string; nice?: string; ionice?: string }) => {
      // Loaded here, not at the top: every `ferry` run would pay for them.
      // A pass loads only its own engine.
      const [
        { default: pino },
        { createLogger },
        { applyProcessPriority, parseIonice, parseNice },
        { normalizeFingerprint },
        { parseHostPort },
        { clockFromEnv, loadScheduleFile, parseBitRate, ScheduledGate, scheduleFromLimit },
        { runPass },
      ] = await Promise.all([
        import('pino'),
        import('../platform/log.js'),
        import('../platform/process-priority.js'),
        import('../platform/tls-identity.js'),
        import('../platform/host-port.js'),
        import('../replication/throttle/index.js'),
        import('../replication/run-pass.js'),
      ]);
      const { host, port } = parseHostPort(opts.to, '--to');
      const priority = { ...(opts.nice === undefined ? {} : { cpu: parseNice(opts.nice) }), ...(opts.ionice === undefined ? {} : parseIonice(opts.ionice)) };
      let fingerprint: string;
      try {
        fingerprint = normalizeFingerprint(opts.fingerprint);
      } catch (e) {
        throw new UsageError((e as FerryError).message);
      }
      const volumes: VolumePlan[] = [
        ...opts.block.map((b) => ({ ...parseVolumeSpec(b, '--block'), kind: 'block' as const })),
        ...opts.files.map((f) => ({ ...parseVolumeSpec(f, '--files'), kind: 'file' as const, excludes: opts.exclude })),
      ];
      if (volumes.length === 0) throw new UsageError('nothing to migrate: give at least one --block SRC=NAME or --files SRCDIR=NAME');
      let clock;
      try {
        clock = clockFromEnv();
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const bps = opts.limit === undefined ? null : parseBitRate(opts.limit);
      const schedule = opts.schedule
        ? await loadScheduleFile(opts.schedule, bps === null ? null : bps / 1e6)
        : opts.limit !== undefined
          ? scheduleFromLimit(opts.limit)
          : null;
      const log = createLogger({ name: 'ferry-migrate', level: process.env.FERRY_LOG_LEVEL ?? 'warn', destination: pino.destination({ dest: 2, sync: false }) });
      for (const problem of await applyProcessPriority(priority)) log.warn({ err: problem }, 'could not lower the process priority');
      // One gate for every volume of the run: the limit is for the whole migration.
      const gate = schedule ? new ScheduledGate(clock, schedule) : undefined;
      if (gate) {
        log.info({ limit: gate.active.describe }, `speed limit ${gate.active.describe}`);
        gate.onChange((a) => log.info({ limit: a.describe }, `speed limit now ${a.describe}`));
      }
      const tty = process.stderr.isTTY && !opts.json;
      const onProgress = tty
        ? (p: VolumeProgress) => {
            const pct = p.totalBytes ? ((100 * p.doneBytes) / p.totalBytes).toFixed(1) : '100';
            const limit = gate ? `  limit ${gate.active.describe}` : '';
            process.stderr.write(`\r${p.volume}: ${p.phase} ${pct}%  ${fmt(p.doneBytes)} / ${fmt(p.totalBytes)}  wire ${fmt(p.wireBytes)}${limit}   `);
          }
        : undefined;
      const summaries: PassSummary[] = [];
      const ac = new AbortController();
      const onSignal = () => ac.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        for (const v of volumes) {
          const common = { receiver: { host, port, token: opts.token, fingerprint }, log, verify: opts.verify, onProgress, signal: ac.signal, gate };
          const s = await runPass(v, common, { stateDir: opts.state, full: opts.full });
          if (tty) process.stderr.write('\n');
          summaries.push(s);
          if (!opts.json) {
            process.stdout.write(
              `${s.volume}: ${s.pass} pass of ${fmt(s.totalBytes)} in ${(s.durationMs / 1000).toFixed(2)} s, ${fmt(s.bytesOnWire)} on the wire, ` +
                `${fmt(s.bytesSkippedZero)} zero, ${fmt(s.bytesSkippedUnchanged)} unchanged, digest ${s.digest}${s.verified ? ', verified' : ''}\n`,
            );
          }
        }
      } finally {
        gate?.close();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      if (opts.json) process.stdout.write(`${JSON.stringify(summaries)}\n`);
    });
}
