// `ferry discover`: print what discovery sees, as the SMS registration body
// (POST /v3/sources). Wiring only; the work is in src/discovery.

import { InvalidArgumentError, type Command } from 'commander';

export function register(program: Command): void {
  program
    .command('discover')
    .description('Describe this machine as the SMS v3 registration body (POST /v3/sources) and print it as JSON')
    .option('--pretty', 'indent the JSON for people')
    .option('--json', 'print {"body": …, "warnings": […]} instead of the bare body')
    .option('--include-loop', 'report attached loop devices as disks (labs and tests)')
    .option('--snapshot', 'print the raw facts read from the machine instead (Linux; to record test fixtures)')
    .option('--timeout <ms>', 'timeout for each external command, in ms', parseTimeout, 15_000)
    .addHelpText(
      'after',
      '\nWarnings (a tool missing, a device unreadable) go to stderr; the matching part of the body stays empty.\nExit codes: 0 ok (even with warnings), 1 failure, 2 usage error.',
    )
    .action(async (opts: { pretty?: boolean; json?: boolean; includeLoop?: boolean; snapshot?: boolean; timeout: number }) => {
      const { collectLinuxSnapshot, discover } = await import('../discovery/index.js');
      const indent = opts.pretty ? 2 : undefined;
      const timeoutMs = opts.timeout;
      if (opts.snapshot) {
        const snap = await collectLinuxSnapshot({ includeLoop: opts.includeLoop, timeoutMs });
        process.stdout.write(`${JSON.stringify(snap, null, indent)}\n`);
        return;
      }
      const result = await discover({ includeLoop: opts.includeLoop, timeoutMs });
      for (const w of result.warnings) process.stderr.write(`ferry discover: warning: ${w}\n`);
      const out = opts.json ? { body: result.body, warnings: result.warnings } : result.body;
      process.stdout.write(`${JSON.stringify(out, null, indent)}\n`);
    });
}

function parseTimeout(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 100 || n > 600_000) throw new InvalidArgumentError('a whole number of milliseconds between 100 and 600000');
  return n;
}
