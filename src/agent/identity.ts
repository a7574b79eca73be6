// The machine's identity: which machine this agent runs on, stable across
// reboots and agent reinstalls, and not tied to a MAC address alone (NICs are
// replaced, cloned VMs share MACs). It combines the OS machine id, the
// firmware (DMI/SMBIOS) product UUID and the hostname; the platform files
// collect the raw parts.

import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { readIdentityPartsLinux } from './identity-linux.js';
import { readIdentityPartsWindows } from './identity-windows.js';

export const identitySchema = z.strictObject({
  machineId: z.string().max(255).optional(),
  productUuid: z.string().max(255).optional(),
  hostname: z.string().max(255),
  /** sha256 over the parts: what the agent compares to notice it was moved or cloned. */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
});
export type MachineIdentity = z.infer<typeof identitySchema>;

export interface IdentityParts {
  machineId?: string;
  productUuid?: string;
  hostname: string;
}

export function identityFromParts(parts: IdentityParts): MachineIdentity {
  const clean = (s: string | undefined) => {
    const v = s?.trim().toLowerCase();
    // Firmware placeholders that many vendors ship instead of a real UUID.
    if (!v || /^(0{8}-0{4}-0{4}-0{4}-0{12}|f{8}-f{4}-f{4}-f{4}-f{12}|03000200-0400-0500-0006-000700080009|not settable|none)$/.test(v)) return undefined;
    return v;
  };
  const machineId = clean(parts.machineId);
  const productUuid = clean(parts.productUuid);
  const host = parts.hostname.trim();
  const fingerprint = createHash('sha256')
    .update(`ferry-identity-v1\0${machineId ?? ''}\0${productUuid ?? ''}\0${host.toLowerCase()}`)
    .digest('hex');
  return { ...(machineId && { machineId }), ...(productUuid && { productUuid }), hostname: host, fingerprint };
}

export async function readMachineIdentity(): Promise<MachineIdentity> {
  const parts = process.platform === 'win32' ? await readIdentityPartsWindows() : await readIdentityPartsLinux();
  return identityFromParts({ ...parts, hostname: hostname() });
}
