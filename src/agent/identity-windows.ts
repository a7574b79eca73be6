// Identity parts on Windows: the MachineGuid the OS writes at install time
// and the SMBIOS UUID (Win32_ComputerSystemProduct), read with reg.exe and
// PowerShell through exec (with timeouts).

import { exec } from '../platform/exec.js';

export function parseMachineGuid(regOutput: string): string | undefined {
  return regOutput.match(/MachineGuid\s+REG_SZ\s+([0-9a-fA-F-]{36})/)?.[1];
}

export async function readIdentityPartsWindows(): Promise<{ machineId?: string; productUuid?: string }> {
  let machineId: string | undefined;
  let productUuid: string | undefined;
  try {
    const r = await exec('reg', ['query', 'HKLM\\SOFTWARE\\Microsoft\\Cryptography', '/v', 'MachineGuid'], { timeoutMs: 10_000 });
    machineId = parseMachineGuid(r.stdout);
  } catch {
    // left undefined: the other parts still identify the machine
  }
  try {
    const r = await exec('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', '(Get-CimInstance Win32_ComputerSystemProduct).UUID'], { timeoutMs: 20_000 });
    productUuid = r.stdout.trim() || undefined;
  } catch {
    // as above
  }
  return { machineId, productUuid };
}
