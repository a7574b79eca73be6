// Starting a receiver from its command-line shape: TLS identity and join
// token kept in the data directory, targets parsed (and refused when they
// nest as plain directories: target-nesting.ts), whole disks (--disk) given
// to the 'system' kind after what a killed receiver left of its system
// sessions is cleaned (system/stale-cleanup.ts), DIR/receiver.json
// (0600: it holds the token) written once the port is known.

import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../platform/atomic-file.js';
import type { Logger } from '../platform/log.js';
import { loadOrCreateTlsIdentity } from '../platform/tls-identity.js';
import { parseHostPort } from '../platform/host-port.js';
import { startSyncHelper } from '../platform/sync-fs.js';
import { Receiver, newJoinToken } from './server.js';
import type { SessionKindHandler, TargetSpec } from './session-kind.js';
import { assertTargetsApart } from './target-nesting.js';
import type { ConnectionLimitOptions } from './connection-limits.js';
import type { SessionKind } from '../protocol/frames.js';
import type { DiskSpec } from './system/disks.js';
import { cleanStaleSystems } from './system/stale-cleanup.js';
import { systemKind } from './system/system-kind.js';

export const ReceiverInfoSchema = z.object({
  host: z.string(),
  port: z.number().int(),
  fingerprint: z.string(),
  token: z.string(),
  pid: z.number().int(),
  targets: z.array(z.string()),
  /** The whole disks (--disk) this receiver lays out, by name. */
  disks: z.array(z.string()).default([]),
});
export type ReceiverInfo = z.infer<typeof ReceiverInfoSchema>;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function parseTarget(spec: string): TargetSpec {
  const i = spec.indexOf('=');
  if (i <= 0 || i === spec.length - 1) throw new UsageError(`--target wants NAME=PATH, got '${spec}'`);
  const name = spec.slice(0, i);
  if (!NAME.test(name)) throw new UsageError(`target name '${name}' may hold letters, digits, '_', '.', '-' only`);
  return { name, path: resolve(spec.slice(i + 1)) };
}

export interface StartOptions {
  listen: string;
  dataDir: string;
  targets: TargetSpec[];
  /** Whole disks for the 'system' kind (`--disk NAME=DEVICE`, parsed by system/disks.ts parseDisk). */
  disks?: DiskSpec[];
  token?: string;
  log: Logger;
  kinds?: Partial<Record<SessionKind, SessionKindHandler>>;
  limits?: Partial<ConnectionLimitOptions>;
}

export async function startReceiver(o: StartOptions): Promise<{ receiver: Receiver; info: ReceiverInfo }> {
  const { host, port } = parseHostPort(o.listen, '--listen', '0.0.0.0');
  const names = new Set<string>();
  for (const t of o.targets) {
    if (names.has(t.name)) throw new UsageError(`target ${t.name} given twice`);
    names.add(t.name);
  }
  assertTargetsApart(o.targets);
  const disks = o.disks ?? [];
  const diskNames = new Set<string>();
  for (const d of disks) {
    if (diskNames.has(d.name)) throw new UsageError(`disk ${d.name} given twice`);
    diskNames.add(d.name);
    if (o.targets.some((t) => t.path === d.path)) throw new UsageError(`${d.path} is given both as a target and as disk ${d.name}`);
  }
  await cleanStaleSystems(o.dataDir, disks, o.log);
  const identity = await loadOrCreateTlsIdentity(o.dataDir, { commonName: 'ferry-receiver' });
  const infoPath = join(o.dataDir, 'receiver.json');
  let token = o.token;
  if (!token) {
    try {
      token = ReceiverInfoSchema.parse(JSON.parse(await readFile(infoPath, 'utf8'))).token;
    } catch {
      token = newJoinToken();
    }
  }
  // While this process is small: the flushes of its file passes then never fork it (platform/sync-fs.ts).
  startSyncHelper();
  const receiver = new Receiver({ host, port, dataDir: o.dataDir, identity, token, targets: o.targets, log: o.log, kinds: { system: systemKind(disks), ...o.kinds }, limits: o.limits });
  const bound = await receiver.listen();
  const info: ReceiverInfo = { host, port: bound, fingerprint: identity.fingerprint, token, pid: process.pid, targets: o.targets.map((t) => t.name), disks: disks.map((d) => d.name) };
  await writeFileAtomic(infoPath, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  return { receiver, info };
}
