// `ferry service install|uninstall|status`: wiring only; the work is in
// src/platform/service-linux.ts and service-windows.ts.

import { existsSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors/ferry-error.js';
import { defaultConfigPath } from '../config/default-paths.js';
import { selfCommand } from '../platform/self-command.js';
import type { ServiceStep } from '../platform/service-linux.js';
import type { WindowsInstallOptions } from '../platform/service-windows.js';
import type { ServiceName } from '../platform/service-units.js';

const linux = () => import('../platform/service-linux.js');
const windows = () => import('../platform/service-windows.js');

interface ServiceFlags {
  name: string;
  platform: string;
  root?: string;
  dryRun?: boolean;
  print?: boolean;
  config?: string;
  exec?: string;
  serviceDir?: string;
}

/**
 * How to start this very ferry: the packaged launcher it was started through
 * (bin/ferry exports FERRY_LAUNCHER: /usr/bin/ferry, /usr/local/bin/ferry),
 * the single executable, or node + bin.js.
 */
function selfExec(override?: string): string[] {
  if (override) return [override];
  const script = process.argv[1];
  return selfCommand(script && existsSync(script) ? realpathSync(script) : script);
}

function parse(flags: ServiceFlags): { name: ServiceName; platform: 'linux' | 'windows' } {
  if (flags.name !== 'agent' && flags.name !== 'receiver') throw new UsageError(`--name must be agent or receiver, not ${JSON.stringify(flags.name)}`);
  if (flags.platform !== 'linux' && flags.platform !== 'windows') throw new UsageError(`--platform must be linux or windows`);
  return { name: flags.name, platform: flags.platform };
}

function windowsOptions(name: ServiceName, flags: ServiceFlags): WindowsInstallOptions {
  const [executable, ...prefixArgs] = selfExec(flags.exec);
  return {
    name,
    executable: executable!,
    prefixArgs,
    configPath: flags.config ?? (process.platform === 'win32' ? defaultConfigPath('win32') : undefined),
    serviceDir: flags.serviceDir ?? dirname(executable!),
    dryRun: flags.dryRun,
  };
}

function printSteps(steps: ServiceStep[], dryRun?: boolean): void {
  for (const s of steps) process.stdout.write(`${dryRun ? 'would ' : ''}${s.action} ${s.detail}\n`);
}

export function register(program: Command): void {
  const service = program.command('service').description('install, remove or inspect ferry as a system service (systemd or WinSW)');
  const common = (c: Command) =>
    c
      .option('--name <name>', 'which service: agent or receiver', 'agent')
      .option('--platform <platform>', 'linux (systemd) or windows (WinSW)', process.platform === 'win32' ? 'windows' : 'linux')
      .option('--root <dir>', 'Linux: install below this directory, offline (systemctl --root)')
      .option('--dry-run', 'print the steps without doing them')
      .option('--service-dir <dir>', 'Windows: directory holding ferry-<name>-service.exe (WinSW)');

  common(service.command('install').description('write the unit (or WinSW XML), enable and start the service'))
    .option('--config <path>', 'agent config file the service uses')
    .option('--exec <path>', 'path of the ferry executable the service runs (default: this one)')
    .option('--print', 'print the unit file (or WinSW XML) and exit')
    .action(async (flags: ServiceFlags) => {
      const { name, platform } = parse(flags);
      if (platform === 'windows') {
        const o = windowsOptions(name, flags);
        const { installWindowsService, renderWinswXml } = await windows();
        if (flags.print) return void process.stdout.write(renderWinswXml(o));
        printSteps(await installWindowsService(o), flags.dryRun);
        return;
      }
      const opts = { name, exec: selfExec(flags.exec), configPath: flags.config, root: flags.root, dryRun: flags.dryRun };
      if (flags.print) return void process.stdout.write((await import('../platform/service-units.js')).renderUnit(name, opts));
      printSteps(await (await linux()).installLinuxService(opts), flags.dryRun);
    });

  common(service.command('uninstall').description('stop, disable and remove the service')).action(async (flags: ServiceFlags) => {
    const { name, platform } = parse(flags);
    if (platform === 'windows') return void printSteps(await (await windows()).uninstallWindowsService(windowsOptions(name, flags)), flags.dryRun);
    printSteps(await (await linux()).uninstallLinuxService({ name, exec: [], root: flags.root, dryRun: flags.dryRun }), flags.dryRun);
  });

  common(service.command('status').description('is the service installed, enabled, running'))
    .option('--json', 'print JSON')
    .action(async (flags: ServiceFlags & { json?: boolean }) => {
      const { name, platform } = parse(flags);
      if (platform === 'windows') {
        process.stdout.write(`${await (await windows()).windowsServiceStatus(windowsOptions(name, flags))}\n`);
        return;
      }
      const st = await (await linux()).linuxServiceStatus({ name, exec: [], root: flags.root });
      if (!st.installed) process.exitCode = 3;
      if (flags.json) return void process.stdout.write(`${JSON.stringify(st)}\n`);
      process.stdout.write(
        `${st.unit}: ${st.installed ? `installed (${st.unitFile})` : 'not installed'}, ${st.enabled}` +
          `${st.active ? `, ${st.active}` : ''}${st.mainPid ? `, pid ${st.mainPid}` : ''}\n`,
      );
    });
}

