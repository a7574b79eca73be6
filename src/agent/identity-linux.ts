// Identity parts on Linux: systemd's /etc/machine-id (or D-Bus's copy) and
// the SMBIOS product UUID from sysfs (readable by root only).

import { readFile } from 'node:fs/promises';

async function firstReadable(paths: string[]): Promise<string | undefined> {
  for (const p of paths) {
    try {
      const v = (await readFile(p, 'utf8')).trim();
      if (v) return v;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

export async function readIdentityPartsLinux(): Promise<{ machineId?: string; productUuid?: string }> {
  const machineId = await firstReadable(['/etc/machine-id', '/var/lib/dbus/machine-id']);
  const productUuid = await firstReadable(['/sys/class/dmi/id/product_uuid', '/sys/devices/virtual/dmi/id/product_uuid']);
  return { machineId, productUuid };
}
