// The list of subcommands the CLI knows. Add a line here when a new
// src/cli/<name>.ts appears; nothing else in the CLI needs to change.

import type { Command } from 'commander';
import { register as migrate } from './migrate.js';
import { register as receive } from './receive.js';

export type Register = (program: Command) => void;

export const commands: Register[] = [receive, migrate];
