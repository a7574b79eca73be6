// ferry's single entry point. This file only wires subcommands together:
// each subcommand lives in its own file under src/cli/ and exports
// `register(program)`. Exit codes: 0 ok, 1 runtime failure, 2 usage error.

import { Command, CommanderError } from 'commander';
import { FerryError, UsageError, errorMessage } from '../errors/ferry-error.js';
import { agentVersion } from '../version.js';
import { commands } from './commands.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('ferry')
    .description('Source-server migration agent: discover, register, replicate disks and file trees to a cloud.')
    .version(agentVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  for (const register of commands) register(program);
  for (const sub of program.commands) sub.exitOverride();

  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`ferry: ${err.message}\n`);
      return 2;
    }
    const code = err instanceof FerryError ? ` [${err.code}]` : '';
    process.stderr.write(`ferry: ${errorMessage(err)}${code}\n`);
    return 1;
  }
}
