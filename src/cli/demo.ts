// `ferry demo`: the whole flow on this machine (src/demo/lab.ts). Wiring
// only: options, where output goes, signals, the summary and the exit code.

import type { Command } from 'commander';
import type { DemoSummary } from '../demo/lab.js';
import { formatBytes, formatDuration } from '../demo/progress-line.js';

interface Opts {
  files?: string;
  block?: string;
  data?: string;
  keep?: boolean;
  sync?: boolean;
  thenSync?: boolean;
  json?: boolean;
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
    .action(async (opts: Opts) => {
      const [{ consoleIO }, { runDemo }] = await Promise.all([import('../demo/console.js'), import('../demo/lab.js')]);
      const io = consoleIO(opts.json ? process.stderr : process.stdout);
      const ac = new AbortController();
      const onSignal = () => ac.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let summary: DemoSummary;
      try {
        summary = await runDemo(
          { files: opts.files, block: opts.block, data: opts.data, keep: opts.keep, sync: opts.sync, waitBeforeSync: opts.thenSync },
          io,
          ac.signal,
        );
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      printSummary(summary, io.say, opts.json === true);
      process.exitCode = summary.ok ? 0 : 1;
    });
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
