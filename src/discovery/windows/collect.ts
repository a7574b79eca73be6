// Runs the PowerShell probes (native-probes/windows/*.ps1) with timeouts and
// returns their raw stdout; a probe that fails leaves its part undefined and
// adds a warning.

import { fileURLToPath } from 'node:url';
import { exec } from '../../platform/exec.js';
import { errorMessage } from '../../errors/ferry-error.js';
import type { WindowsProbeOutputs } from './probe-schema.js';

export const PROBES = ['disks', 'network', 'system', 'rights'] as const;

export function probeScriptPath(name: string): string {
  // dist/discovery/windows/collect.js → <package>/native-probes/windows/<name>.ps1
  return fileURLToPath(new URL(`../../../native-probes/windows/${name}.ps1`, import.meta.url));
}

export async function collectWindowsProbes(options: { timeoutMs?: number } = {}): Promise<{ probes: WindowsProbeOutputs; warnings: string[] }> {
  const probes: WindowsProbeOutputs = {};
  const warnings: string[] = [];
  for (const name of PROBES) {
    try {
      const r = await exec(
        'powershell.exe',
        ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', probeScriptPath(name)],
        { timeoutMs: options.timeoutMs ?? 60_000, env: process.env },
      );
      probes[name] = r.stdout;
    } catch (err) {
      warnings.push(`Windows probe ${name}: ${errorMessage(err)}`);
    }
  }
  return { probes, warnings };
}
