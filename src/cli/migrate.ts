// `ferry migrate`: one pass per volume straight to a receiver, no control
// plane, or (--system) a whole server onto the receiver's blank disks.
// Wiring only: parsing, then replication/run-pass.ts per volume (block
// devices and file trees alike) or migration/whole-server.ts, then the
// summary. What is shown while it runs is cli/migrate-progress.ts.

import type { Command } from 'commander';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { FerryError, UsageError } from '../errors/ferry-error.js';
import type { PassSummary, VolumePlan } from '../replication/types.js';
import type { WholeServerSummary } from '../migration/whole-server.js';
import type { ProgressView } from './migrate-progress.js';

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

/** A receiver-target-style name for this migration: 'm-' and the host name. */
function defaultMigrationId(host: string): string {
  const clean = host.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[-_.]+/, '');
  return `m-${clean || 'host'}`.slice(0, 48);
}

const MIGRATION_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

interface MigrateOptions {
  to: string;
  token: string;
  fingerprint: string;
  block: string[];
  files: string[];
  exclude: string[];
  state: string;
  full: boolean;
  verify: boolean;
  json: boolean;
  limit?: string;
  schedule?: string;
  nice?: string;
  ionice?: string;
  system: boolean;
  mode: string;
  sourceRoot: string;
  sourceDisk: string[];
  layout?: string;
  migrationId?: string;
  relayout: boolean;
  parallel?: string;
  configure: boolean;
  keepStaticNetwork: boolean;
  progressJson: boolean;
}

/** The flags that mean something only with --system (and the ones that mean nothing with it). */
const SYSTEM_ONLY = ['mode', 'sourceRoot', 'sourceDisk', 'layout', 'migrationId', 'relayout', 'parallel', 'configure', 'keepStaticNetwork'] as const;
const FLAG: Record<string, string> = {
  mode: '--mode',
  sourceRoot: '--source-root',
  sourceDisk: '--source-disk',
  layout: '--layout',
  migrationId: '--migration-id',
  relayout: '--relayout',
  parallel: '--parallel',
  configure: '--no-configure',
  keepStaticNetwork: '--keep-static-network',
};

function fmt(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function register(program: Command): void {
  program
    .command('migrate')
    .description(
      'Replicate volumes straight to a receiver (one pass: full, or delta when the receiver holds data), ' +
        "or with --system a whole server onto the receiver's blank disks (`ferry receive --disk`).",
    )
    .requiredOption('--to <host:port>', 'the receiver')
    .requiredOption('--token <token>', 'the receiver join token')
    .requiredOption('--fingerprint <sha256>', "the receiver certificate's SHA-256 fingerprint (pinned)")
    .option('--block <src=name>', 'a block device or image file and its receiver target name (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--files <srcdir=name>', 'a directory tree (one file system) and its receiver target name (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--exclude <glob>', 'leave out paths matching this glob in --files trees (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--system', "migrate the whole server: discover its disks, have the receiver lay out its --disk disks the same way, copy every volume", false)
    .option('--mode <mode>', 'with --system: file (copy file trees; partitions may shrink) or block (copy partitions or whole disks as bytes)', 'file')
    .option('--source-root <dir>', 'with --system: where the source system is mounted (mount points are relative to it)', '/')
    .option('--source-disk <dev>', 'with --system: migrate only this source disk (repeatable; admits loop devices)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--layout <file>', 'with --system: the target layout, a JSON target_server object as in POST /v3/tasks (default: the source layout fitted onto the receiver disks)')
    .option('--migration-id <id>', "with --system: this migration's name on the receiver (default: m-HOSTNAME)")
    .option('--relayout', "with --system: wipe and lay out the receiver's disks again even if they hold this migration's earlier layout", false)
    .option('--parallel <n>', 'with --system: volumes copied at the same time (1-8, default 2; with 2 or more, volumes of at most 64 MiB go one at a time beside them, 8 at once in all)')
    .option('--no-configure', 'with --system: do not configure the copied system for its new hardware after the copy (fstab, boot loader, initramfs drivers, network: docs/configure.md)')
    .option('--keep-static-network', "with --system: configure keeps the primary interface's static addresses (default: it falls back to DHCP)", false)
    .option('--state <dir>', 'where file-level manifests are kept between passes', defaultStateDir())
    .option('--full', 'file level: send everything, ignoring the manifest of the last pass', false)
    .option('--verify', 'ask the receiver to re-read its target and compare (consistency check)', false)
    .option('--json', 'print the summary as JSON on stdout (single volumes: an array of pass summaries; --system: one object)', false)
    .option('--progress-json', 'print progress as JSON lines on stdout ({"type":"step"|"progress",…}) instead of bars', false)
    .option('--limit <rate>', 'limit the wire rate: bits per second with K/M/G suffix, e.g. 50M (0 = unlimited); with --schedule, the rate between segments')
    .option('--schedule <file>', 'time-of-day limits: a JSON file with the body of POST /v3/tasks/{id}/speed-limit, applied by local time')
    .option('--nice <n>', 'run at this CPU nice value (0-19; Windows: below-normal priority when > 0)')
    .option('--ionice <class[:level]>', 'Linux I/O priority: best-effort[:0-7] or idle')
    .action(async (opts: MigrateOptions, cmd: Command) => {
      const given = (k: string) => cmd.getOptionValueSource(k) === 'cli';
      if (opts.system) {
        if (opts.block.length || opts.files.length) throw new UsageError('--system migrates the whole server: give no --block or --files with it');
        if (opts.exclude.length) throw new UsageError('--exclude is for --files trees; --system copies every file system whole');
        if (opts.mode !== 'file' && opts.mode !== 'block') throw new UsageError(`--mode is file or block, not '${opts.mode}'`);
        if (opts.migrationId !== undefined && !MIGRATION_ID.test(opts.migrationId)) {
          throw new UsageError(`--migration-id '${opts.migrationId}' may hold letters, digits, '_', '.', '-' only (64 at most, not starting with a sign)`);
        }
        if (opts.parallel !== undefined && !/^[1-8]$/.test(opts.parallel)) throw new UsageError(`--parallel is a whole number from 1 to 8, not '${opts.parallel}'`);
      } else {
        const stray = SYSTEM_ONLY.filter(given);
        if (stray.length) throw new UsageError(`${stray.map((k) => FLAG[k]).join(', ')} only with --system`);
      }
      // Loaded here, not at the top: every `ferry` run would pay for them.
      // A pass loads only its own engine.
      const [
        { deferredLogger },
        { applyProcessPriority, parseIonice, parseNice },
        { normalizeFingerprint },
        { parseHostPort },
        { clockFromEnv },
        views,
      ] = await Promise.all([
        import('../platform/deferred-logger.js'),
        import('../platform/process-priority.js'),
        import('../platform/tls-identity.js'),
        import('../platform/host-port.js'),
        import('../replication/throttle/clock.js'),
        import('./migrate-progress.js'),
      ]);
      // The rest of throttle/ (its schedule schemas build zod objects at import: about 30 ms of a
      // delta pass's start-up, measured with --cpu-prof) only when a limit is asked for.
      const throttle = opts.limit !== undefined || opts.schedule !== undefined ? await import('../replication/throttle/index.js') : undefined;
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
      if (!opts.system && volumes.length === 0) throw new UsageError('nothing to migrate: give at least one --block SRC=NAME or --files SRCDIR=NAME, or --system');
      const targetServer = opts.system && opts.layout !== undefined ? await readLayoutFile(opts.layout) : undefined;
      let clock;
      try {
        clock = clockFromEnv();
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const bps = opts.limit === undefined || !throttle ? null : throttle.parseBitRate(opts.limit);
      const schedule = !throttle
        ? null
        : opts.schedule
          ? await throttle.loadScheduleFile(opts.schedule, bps === null ? null : bps / 1e6)
          : opts.limit !== undefined
            ? throttle.scheduleFromLimit(opts.limit)
            : null;
      // pino is loaded at the first record that passes the level (none, in a pass that goes well at
      // the default level): see platform/deferred-logger.ts for what that saves.
      const level = process.env.FERRY_LOG_LEVEL ?? 'warn';
      const log = deferredLogger(level, async () => {
        const [{ default: pino }, { createLogger }] = await Promise.all([import('pino'), import('../platform/log.js')]);
        return createLogger({ name: 'ferry-migrate', level, destination: pino.destination({ dest: 2, sync: false }) });
      });
      for (const problem of await applyProcessPriority(priority)) log.warn({ err: problem }, 'could not lower the process priority');
      // One gate for every volume of the run: the limit is for the whole migration.
      const gate = schedule && throttle ? new throttle.ScheduledGate(clock, schedule) : undefined;
      if (gate) {
        log.info({ limit: gate.active.describe }, `speed limit ${gate.active.describe}`);
        gate.onChange((a) => log.info({ limit: a.describe }, `speed limit now ${a.describe}`));
      }
      // What is shown while it runs: JSON lines when asked, bars on a terminal, else nothing.
      const bars = !opts.progressJson && process.stderr.isTTY === true;
      const view: ProgressView = opts.progressJson
        ? views.jsonLinesView(process.stdout)
        : bars
          ? (await import('./migrate-bars.js')).terminalView(process.stderr, gate ? () => gate.active.describe : undefined)
          : views.silentView;
      // Summary lines wait for the bars to stop when both are on the terminal.
      const pending: string[] = [];
      const print = (line: string) => (bars ? pending.push(line) : process.stdout.write(`${line}\n`));
      const ac = new AbortController();
      const onSignal = () => ac.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const receiver = { host, port, token: opts.token, fingerprint };
      try {
        if (opts.system) {
          const { runWholeServer, WholeServerError } = await import('../migration/whole-server.js');
          let summary: WholeServerSummary;
          try {
            summary = await runWholeServer({
              receiver,
              migrationId: opts.migrationId ?? defaultMigrationId(hostname()),
              mode: opts.mode as 'file' | 'block',
              sourceRoot: opts.sourceRoot,
              ...(opts.sourceDisk.length ? { sourceDisks: opts.sourceDisk } : {}),
              ...(targetServer !== undefined ? { targetServer } : {}),
              relayout: opts.relayout,
              ...(opts.parallel !== undefined ? { parallel: Number(opts.parallel) } : {}),
              configure: opts.configure,
              keepStaticNetwork: opts.keepStaticNetwork,
              stateDir: opts.state,
              verify: opts.verify,
              full: opts.full,
              log,
              signal: ac.signal,
              ...(gate ? { gate } : {}),
              onStep: (e) => view.step(e),
              onProgress: (p) => view.progress(p),
            });
          } catch (e) {
            view.stop();
            if (e instanceof WholeServerError) printSystemSummary(e.summary, opts.json);
            throw e;
          }
          view.stop();
          printSystemSummary(summary, opts.json);
          return;
        }
        const summaries: PassSummary[] = [];
        for (const [i, v] of volumes.entries()) {
          const at = { id: v.target, index: i, count: volumes.length };
          view.step({ step: 'copy', state: 'start', volume: at, detail: `${v.source} → ${v.target} (${v.kind} level)` });
          const common = {
            receiver,
            log,
            verify: opts.verify,
            onProgress: (p: Parameters<ProgressView['progress']>[0]) => view.progress({ ...p, volumeId: v.target, volumeIndex: i, volumeCount: volumes.length }),
            signal: ac.signal,
            gate,
          };
          let s: PassSummary;
          try {
            s = await runPassLazily(v, common, { stateDir: opts.state, full: opts.full });
          } catch (e) {
            view.step({ step: 'copy', state: 'failed', volume: at, detail: (e as Error).message });
            throw e;
          }
          view.step({ step: 'copy', state: 'done', volume: at, detail: `${s.pass} pass` });
          summaries.push(s);
          if (!opts.json) print(passLine(s));
        }
        view.stop();
        if (opts.json) process.stdout.write(`${JSON.stringify(summaries)}\n`);
      } finally {
        view.stop();
        if (pending.length) process.stdout.write(`${pending.join('\n')}\n`);
        gate?.close();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

async function runPassLazily(...args: Parameters<typeof import('../replication/run-pass.js').runPass>): Promise<PassSummary> {
  const { runPass } = await import('../replication/run-pass.js');
  return runPass(...args);
}

/** --layout FILE: a target_server object (or a POST /v3/tasks body holding one). */
async function readLayoutFile(path: string): Promise<unknown> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--layout ${path}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--layout ${path} is not JSON: ${(e as Error).message}`);
  }
  if (value && typeof value === 'object' && 'target_server' in value) return (value as { target_server: unknown }).target_server;
  return value;
}

function passLine(s: PassSummary): string {
  return (
    `${s.volume}: ${s.pass} pass of ${fmt(s.totalBytes)} in ${(s.durationMs / 1000).toFixed(2)} s, ${fmt(s.bytesOnWire)} on the wire, ` +
    `${fmt(s.bytesSkippedZero)} zero, ${fmt(s.bytesSkippedUnchanged)} unchanged, digest ${s.digest}${s.verified ? ', verified' : ''}`
  );
}

/** --json: one object; else a few lines a person reads. */
function printSystemSummary(s: WholeServerSummary, json: boolean): void {
  if (json) {
    const { layout, layoutState, notes, volumes, migrationId, mode, configured, configureError, durationMs } = s;
    process.stdout.write(`${JSON.stringify({ migrationId, mode, layoutState, layout, notes, volumes, configured, configureError, durationMs })}\n`);
    return;
  }
  const out: string[] = [`migration ${s.migrationId}: layout ${s.layoutState}, ${s.mode} level, ${(s.durationMs / 1000).toFixed(1)} s`];
  for (const n of s.notes) out.push(`  note: ${n}`);
  for (const v of s.volumes) {
    const where = [v.mountPoint, v.fsType].filter(Boolean).join(' ');
    const head = `  ${v.id}${where ? ` (${where})` : ''}: `;
    if (v.summary) out.push(head + passLine(v.summary).slice(v.summary.volume.length + 2) + (v.actions?.length ? `; ${v.actions.join('; ')}` : ''));
    else if (v.skipped) out.push(`${head}not copied: ${v.skipped}`);
    else if (v.error) out.push(`${head}FAILED [${v.error.code}] ${v.error.message}`);
  }
  if (s.configured) {
    out.push(`  configured ${s.configured.distro}: ${s.configured.changes.length} changes (listed in ${s.configured.log} on the target)`);
    for (const c of s.configured.changes) out.push(`    ${c}`);
  }
  if (s.configureError) out.push(`  configure FAILED [${s.configureError.code}] ${s.configureError.message}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
