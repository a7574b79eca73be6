// Installing ferry as a systemd service: write the unit, daemon-reload,
// enable --now; and the reverse. With `root` set, files go below that prefix
// and systemctl runs offline (`systemctl --root=…`, enable/disable only),
// which is how it is tested on machines where systemd is not PID 1. With
// `dryRun` nothing is written or run; the steps are only reported.

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FerryError } from '../errors/ferry-error.js';
import { exec } from './exec.js';
import { renderUnit, unitFileName, type ServiceName, type UnitOptions } from './service-units.js';

export interface LinuxServiceOptions extends UnitOptions {
  name: ServiceName;
  /** Filesystem prefix (offline install into an image or a test directory). */
  root?: string;
  dryRun?: boolean;
  /** Where `systemctl` is; tests may point it elsewhere. */
  systemctl?: string;
}

export interface ServiceStep {
  action: string;
  detail: string;
}

export function unitPath(name: ServiceName, root = '/'): string {
  return join(root, 'etc/systemd/system', unitFileName(name));
}

async function systemctl(opts: LinuxServiceOptions, args: string[], steps: ServiceStep[], okCodes = [0]): Promise<string> {
  const full = opts.root ? [`--root=${opts.root}`, ...args] : args;
  steps.push({ action: 'run', detail: ['systemctl', ...full].join(' ') });
  if (opts.dryRun) return '';
  try {
    const r = await exec(opts.systemctl ?? 'systemctl', full, { timeoutMs: 60_000, okCodes });
    return r.stdout;
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new FerryError('FERRY_SERVICE', `systemctl ${full.join(' ')} failed${stderr ? `: ${stderr.split('\n')[0]}` : ''}`, { cause: e });
  }
}

export async function installLinuxService(opts: LinuxServiceOptions): Promise<ServiceStep[]> {
  const steps: ServiceStep[] = [];
  const path = unitPath(opts.name, opts.root);
  const text = renderUnit(opts.name, opts);
  steps.push({ action: 'write', detail: path });
  if (!opts.dryRun) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text, { mode: 0o644 });
  }
  const unit = unitFileName(opts.name);
  if (opts.root) {
    await systemctl(opts, ['enable', unit], steps);
  } else {
    await systemctl(opts, ['daemon-reload'], steps);
    await systemctl(opts, ['enable', '--now', unit], steps);
  }
  return steps;
}

export async function uninstallLinuxService(opts: LinuxServiceOptions): Promise<ServiceStep[]> {
  const steps: ServiceStep[] = [];
  const unit = unitFileName(opts.name);
  const path = unitPath(opts.name, opts.root);
  if (opts.root) await systemctl(opts, ['disable', unit], steps, [0, 1]);
  else await systemctl(opts, ['disable', '--now', unit], steps, [0, 1, 5]);
  steps.push({ action: 'remove', detail: path });
  if (!opts.dryRun) await rm(path, { force: true });
  if (!opts.root) await systemctl(opts, ['daemon-reload'], steps);
  return steps;
}

export interface LinuxServiceStatus {
  unit: string;
  unitFile: string;
  installed: boolean;
  enabled: string;
  active?: string;
  mainPid?: number;
}

export async function linuxServiceStatus(opts: LinuxServiceOptions): Promise<LinuxServiceStatus> {
  const unit = unitFileName(opts.name);
  const path = unitPath(opts.name, opts.root);
  const installed = await readFile(path).then(
    () => true,
    () => false,
  );
  const steps: ServiceStep[] = [];
  const enabled = (await systemctl({ ...opts, dryRun: false }, ['is-enabled', unit], steps, [0, 1, 4]).catch(() => 'unknown')).trim() || 'unknown';
  const status: LinuxServiceStatus = { unit, unitFile: path, installed, enabled };
  if (!opts.root) {
    const show = await systemctl({ ...opts, dryRun: false }, ['show', '-p', 'ActiveState,SubState,MainPID', unit], steps, [0, 1]).catch(() => '');
    const kv = Object.fromEntries(show.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    if (kv.ActiveState) status.active = `${kv.ActiveState}${kv.SubState ? ` (${kv.SubState})` : ''}`;
    if (kv.MainPID && kv.MainPID !== '0') status.mainPid = Number(kv.MainPID);
  }
  return status;
}
