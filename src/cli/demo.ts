// `ferry demo`: the whole flow on this machine (src/demo/lab.ts). Wiring
// only: options, where output goes, signals, the summary and the exit code.

import type { Command } from 'commander';
import type { DemoSummary } from '../demo/lab.js';
import type { SystemDemoOptions } from '../demo/system-demo.js';
import { UsageError } from '../errors/ferry-error.js';
import { formatBytes, formatDuration } from '../demo/progress-line.js';

interface Opts {
  files?: string;
  block?: string;
  data?: string;
  keep?: boolean;
  sync?: boolean;
  thenSync?: boolean;
  json?: boolean;
  system?: boolean;
  firmware?: string;
  mode?: string;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('Run the whole migration flow on this machine: local control plane, receiver and agent on loopback, one task, live progress, verification.')
    .option('--files <dir>', 'file-level demo: copy this directory tree (default /etc)')
    .option('--block <path>', 'block-level demo: copy this image file or block device')
    .option('--data <dir>', 'data directory for the run (new or empty; default a fresh temp dir)')
    .option('--keep', 'keep the temp data directory (target, logs, configs) afterwards')
    .option('--sync', 'after the first pass, run a delta pass (SYNC) and verify again')
    .option('--then-sync', 'like --sync, but wait for Enter first so you can change the source')
    .option('--json', 'print a machine-readable summary on stdout (progress goes to stderr)')
    .option('--system', 'whole-server demo: build (or reuse) a small Debian 12 server image, migrate it with ferry migrate --system onto a blank disk, boot the copy under qemu and print what it says (needs debootstrap and qemu-system-x86)')
    .option('--firmware <bios|uefi>', 'with --system: the source boots with BIOS (grub-pc) or UEFI (an ESP, OVMF)', 'bios')
    .option('--mode <file|block>', 'with --system: the copy level', 'file')
    .action(async (opts: Opts) => {
      if (opts.system) return runSystem(opts);
      const [{ consoleIO }, { runDemo }] = await Promise.all([import('../demo/console.js'), import('../demo/lab.js')]);
      const io = consoleIO(opts.json ? process.stderr : process.stdout);
      const summary: DemoSummary = await abortedBySignals((signal) =>
        runDemo({ files: opts.files, block: opts.block, data: opts.data, keep: opts.keep, sync: opts.sync, waitBeforeSync: opts.thenSync }, io, signal),
      );
      printSummary(summary, io.say, opts.json === true);
      process.exitCode = summary.ok ? 0 : 1;
    });
}

async function runSystem(opts: Opts): Promise<void> {
  if (opts.files || opts.block || opts.sync || opts.thenSync || opts.data) throw new UsageError('--system takes --firmware, --mode, --keep and --json only');
  if (opts.firmware !== 'bios' && opts.firmware !== 'uefi') throw new UsageError(`--firmware must be bios or uefi, not ${opts.firmware}`);
  if (opts.mode !== 'file' && opts.mode !== 'block') throw new UsageError(`--mode must be file or block, not ${opts.mode}`);
  const [{ consoleIO }, { runSystemDemo }] = await Promise.all([import('../demo/console.js'), import('../demo/system-demo.js')]);
  const io = consoleIO(opts.json ? process.stderr : process.stdout);
  const demo: SystemDemoOptions = { variant: opts.firmware, mode: opts.mode, keep: opts.keep };
  const s = await abortedBySignals((signal) => runSystemDemo(demo, io, signal));
  if (s.error) io.say(`ferry demo --system FAILED: ${s.error.message} [${s.error.code}]`);
  else io.say(`ferry demo --system OK: the migrated server booted from ${s.marker?.root} with IPv4 ${s.marker?.ipv4.join(', ')}`);
  io.say(s.data_dir ? `data kept in ${s.data_dir}` : 'data directory removed (use --keep to keep it)');
  if (opts.json) process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  process.exitCode = s.ok ? 0 : 1;
}

/** Runs a demo with a signal that SIGINT or SIGTERM aborts (the demo then stops its children and cleans up). */
async function abortedBySignals<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await run(ac.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function printSummary(s: DemoSummary, say: (l: string) => void, json: boolean): void {
  if (s.error) {
    say(`ferry demo FAILED: ${s.error.message} [${s.error.code}]`);
    for (const [role, lines] of Object.entries(s.error.logs)) {
      if (lines.length === 0) continue;
      say(`--- last lines of ferry ${role} ---`);
      for (const l of lines) say(l);
    }
  } else {
    const last = s.passes.at(-1);
    say(
      `ferry demo OK: ${s.mode === 'files' ? 'file' : 'block'}-level copy of ${s.source}` +
        `${s.source_bytes !== null ? ` (${formatBytes(s.source_bytes)})` : ''}, ${s.passes.length} pass(es), verified by ${last?.verification.method ?? '-'}, ` +
        `${formatDuration(s.duration_ms / 1000)} in all`,
    );
  }
  say(`children stopped: ${Object.entries(s.children).map(([r, c]) => `${r} pid ${c.pid} (${c.exit ?? 'not started'})`).join(', ')}`);
  say(s.data_dir ? `data kept in ${s.data_dir}` : 'data directory removed (use --keep or --data DIR to keep it)');
  if (json) process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
}
