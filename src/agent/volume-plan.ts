// Which volumes a task replicates and what the receiver calls them. The
// config may list them; otherwise block tasks take every discovered disk
// (target = the task's target disk name at the same index, else `disk<i>`)
// and file tasks every mounted partition (target `<disk>_<partition>`, the
// device-id style SMC uses). Also the layout digest used to notice that the
// disks changed under a running block task (SMS.0515).

import { createHash } from 'node:crypto';
import type { SourceBody } from '../sms/schemas/source.js';
import type { AgentConfig } from '../config/agent-config.js';
import { FerryError } from '../errors/ferry-error.js';
import { sizeOfPath } from '../platform/device-size-linux.js';
import type { TaskInfo, VolumePlan } from './ports.js';

function devPath(name: string): string {
  return name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.startsWith('\\\\') ? name : `/dev/${name}`;
}

export function planVolumes(config: AgentConfig, task: TaskInfo, body: SourceBody): VolumePlan[] {
  const kind = task.type === 'MIGRATE_BLOCK' ? 'block' : 'file';
  if (config.volumes?.length) {
    const chosen = config.volumes.filter((v) => (v.kind ?? kind) === kind);
    if (chosen.length === 0) throw new FerryError('FERRY_CONFIG', `the config lists volumes, but none of kind ${kind} for a ${task.type} task`);
    return chosen.map((v) => ({ kind, source: v.source, target: v.target, ...(kind === 'file' && { excludes: config.excludes }) }));
  }
  const disks = body.disks ?? [];
  if (kind === 'block') {
    const targetName = (i: number) => {
      const n = (task.targetDisks[i] ?? '').replace(/^.*[\\/]/, '');
      return /^[A-Za-z0-9_.-]{1,128}$/.test(n) ? n : `disk${i}`;
    };
    const plans = disks.map((d, i) => ({ kind, source: devPath(d.name), target: targetName(i) }) as VolumePlan);
    if (plans.length === 0) throw new FerryError('SMS.0202', 'discovery found no disks to replicate');
    return plans;
  }
  const plans: VolumePlan[] = [];
  disks.forEach((d, di) =>
    (d.physical_volumes ?? []).forEach((pv, pi) => {
      if (pv.mount_point && pv.file_system && !/swap/i.test(pv.file_system)) {
        plans.push({ kind, source: pv.mount_point, target: `${di}_${pv.index ?? pi}`, excludes: config.excludes });
      }
    }),
  );
  if (plans.length === 0) throw new FerryError('SMS.0202', 'discovery found no mounted file systems to replicate');
  return plans;
}

/**
 * A digest of what the disk layout is: disks, their sizes and partitions,
 * plus the sizes of the block volumes the config names (which discovery may
 * not list, e.g. loop devices or image files).
 */
export function layoutDigest(body: SourceBody, configured: Array<{ source: string; size: number }> = []): string {
  const shape = (body.disks ?? []).map((d) => ({
    n: d.name,
    s: d.size,
    p: (d.physical_volumes ?? []).map((pv) => [pv.name, pv.size, pv.index, pv.file_system ?? '']),
  }));
  return createHash('sha256').update(JSON.stringify({ shape, configured })).digest('hex');
}

/** Sizes of the block volumes the config names (-1 when one cannot be read). */
export async function configuredBlockSizes(config: AgentConfig): Promise<Array<{ source: string; size: number }>> {
  const out: Array<{ source: string; size: number }> = [];
  for (const v of config.volumes ?? []) {
    if (v.kind === 'file') continue;
    out.push({ source: v.source, size: await sizeOfPath(v.source).catch(() => -1) });
  }
  return out;
}
