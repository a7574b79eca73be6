// An operator's choices for a source server (PUT /v3/sources/{id}, tables
// 4-42 to 4-46) as one body: what GET /v3/sources/{id} shows now (each
// disk's, partition's, volume group's and logical volume's need_migration
// and adjust_size), with some of them changed. PUT replaces the whole list,
// so the body carries every current choice, not only the changed ones.
// Volumes are named as GET shows them: disk `N`, partition `N_M`, volume
// group by its name, logical volume `VG:LV` (LV by its name). Pure; `ferry
// sources adjust` uses it.

import { UsageError } from '../errors/ferry-error.js';
import type { SourceDetails } from './schemas/source-read.js';
import type { SourceUpdate } from './schemas/source-update.js';
import { num } from './target-server.js';

export type AdjustChange = { id: string; skip: true } | { id: string; keep: true } | { id: string; size: number };

type Rec = Record<string, unknown>;
const list = (v: unknown) => (Array.isArray(v) ? (v as Rec[]) : []);

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** '10737418240', '10G', '512M', '1.5T' (binary units, KiB… as K…) → bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`"${text}" is not a size: give bytes, or a number with K, M, G or T (binary units)`);
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`"${text}" is not a size ferry can use`);
  return bytes;
}

/** The PUT /v3/sources/{id} body: the source's current choices with `changes` applied; unknown ids are usage errors. */
export function adjustmentBody(src: SourceDetails, changes: AdjustChange[]): SourceUpdate {
  const disks = list(src.disks).map((d, i) => ({
    id: String(d.id ?? i),
    need_migration: d.need_migration !== false,
    adjust_size: num(d.adjust_size ?? d.size),
    physical_volumes: list(d.physical_volumes).map((p, j) => ({ id: String(p.id ?? `${i}_${j}`), need_migration: p.need_migration !== false, adjust_size: num(p.adjust_size ?? p.size) })),
  }));
  const vgs = list(src.volume_groups).map((g) => ({
    id: String(g.id ?? g.name ?? ''),
    need_migration: g.need_migration !== false,
    adjust_size: num(g.adjust_size ?? g.size),
    logical_volumes: list(g.logical_volumes).map((l) => ({ id: String(l.id ?? l.name ?? ''), need_migration: l.need_migration !== false, adjust_size: num(l.adjust_size ?? l.size) })),
  }));
  for (const c of changes) {
    const target = find(c.id);
    if (!target) {
      const known = [...disks.flatMap((d) => [d.id, ...d.physical_volumes.map((p) => p.id)]), ...vgs.flatMap((g) => [g.id, ...g.logical_volumes.map((l) => `${g.id}:${l.id}`)])];
      throw new UsageError(`source ${String(src.id)} has no disk, partition, volume group or logical volume "${c.id}" (it has: ${known.join(', ') || 'none'})`);
    }
    if ('skip' in c) target.need_migration = false;
    else if ('keep' in c) target.need_migration = true;
    else {
      target.need_migration = true;
      target.adjust_size = c.size;
    }
  }
  return { ...(disks.length ? { disks } : {}), ...(vgs.length ? { volume_group_s: vgs } : {}) };

  function find(id: string): { need_migration: boolean; adjust_size: number } | undefined {
    if (/^\d+$/.test(id)) return disks.find((d) => d.id === id);
    if (/^\d+_\d+$/.test(id)) return disks.flatMap((d) => d.physical_volumes).find((p) => p.id === id);
    const colon = id.indexOf(':');
    if (colon < 0) return vgs.find((g) => g.id === id);
    const g = vgs.find((x) => x.id === id.slice(0, colon));
    return g?.logical_volumes.find((l) => l.id === id.slice(colon + 1));
  }
}
