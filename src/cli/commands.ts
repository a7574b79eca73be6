// The list of subcommands the CLI knows. Add a line here when a new
// src/cli/<name>.ts appears; nothing else in the CLI needs to change.

import type { Command } from 'commander';
import { register as controlPlane } from './control-plane.js';
import { register as sources } from './sources.js';
import { register as speedLimit } from './speed-limit.js';
import { register as tasks } from './tasks.js';
import { register as discover } from './discover.js';
import { register as migrate } from './migrate.js';
import { register as receive } from './receive.js';
import { register as service } from './service.js';
import { register as status } from './status.js';
import { register as agent } from './agent.js';
import { register as demo } from './demo.js';

export type Register = (program: Command) => void;

export const commands: Register[] = [agent, discover, service, status, controlPlane, receive, migrate, sources, tasks, speedLimit, demo];
