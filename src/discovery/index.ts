// Discovery: describes the machine this process runs on as the SMS v3
// registration body (POST /v3/sources). It owns the inventory model
// (model.ts), the platform collectors (linux/, windows/) and the mapping to
// the API body (source-body.ts). It only reads the machine — it never
// mounts, activates or writes anything — and it never talks to the network.
// The body's shape belongs to sms/schemas/source.ts; this module
// must not redefine it.

import { FerryError } from '../errors/ferry-error.js';
import { sourceBodySchema, sourceRegistrationSchema, type SourceBody } from '../sms/schemas/source.js';
import type { Inventory } from './model.js';
import { toSourceBody } from './source-body.js';
import { collectLinuxSnapshot } from './linux/collect.js';
import { inventoryFromSnapshot } from './linux/inventory.js';
import type { LinuxSnapshot } from './linux/snapshot.js';
import { collectWindowsProbes } from './windows/collect.js';
import { inventoryFromWindowsProbes } from './windows/inventory.js';

export interface DiscoverOptions {
  /** Report loop devices as disks (Linux; for tests and labs). */
  includeLoop?: boolean;
  /** Per-command timeout, ms. */
  timeoutMs?: number;
}

export interface DiscoveryResult {
  body: SourceBody;
  inventory: Inventory;
  /** What could not be seen; the matching parts of the body are empty. */
  warnings: string[];
}

/** Maps an inventory to the body and checks it against the API schema. */
export function finishDiscovery(inventory: Inventory, warnings: string[]): DiscoveryResult {
  const draft = toSourceBody(inventory);
  const checked = sourceBodySchema.safeParse(draft);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new FerryError(
      'FERRY_DISCOVERY_INVALID',
      `discovery produced a body the SMS schema rejects at ${issue.path.join('.') || '(body)'}: ${issue.message} (a bug: please report it with \`ferry discover --snapshot\`)`,
    );
  }
  const registration = sourceRegistrationSchema.safeParse(checked.data);
  const all = [...warnings];
  if (!registration.success) {
    for (const i of registration.error.issues) all.push(`registration would be refused: ${i.path.join('.')}: ${i.message}`);
  }
  return { body: checked.data, inventory, warnings: all };
}

export async function discoverLinux(options: DiscoverOptions = {}): Promise<DiscoveryResult> {
  const snapshot = await collectLinuxSnapshot(options);
  return discoverFromLinuxSnapshot(snapshot);
}

export function discoverFromLinuxSnapshot(snapshot: LinuxSnapshot): DiscoveryResult {
  const { inventory, warnings } = inventoryFromSnapshot(snapshot);
  return finishDiscovery(inventory, warnings);
}

export async function discoverWindows(options: DiscoverOptions = {}): Promise<DiscoveryResult> {
  const { probes, warnings } = await collectWindowsProbes(options);
  const result = inventoryFromWindowsProbes(probes);
  return finishDiscovery(result.inventory, [...warnings, ...result.warnings]);
}

/** Discovers this machine. */
export async function discover(options: DiscoverOptions = {}): Promise<DiscoveryResult> {
  if (process.platform === 'linux') return discoverLinux(options);
  if (process.platform === 'win32') return discoverWindows(options);
  throw new FerryError('FERRY_UNSUPPORTED_PLATFORM', `discovery supports Linux and Windows, not ${process.platform}`);
}

export { collectLinuxSnapshot, inventoryFromSnapshot, toSourceBody };
export type { Inventory, LinuxSnapshot };
