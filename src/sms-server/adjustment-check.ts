// Checks of an operator's PUT /v3/sources/{id} choices (tables 4-43 to 4-46)
// against what the source registered, before they are stored: a new size
// below the space it uses (SMS.6538), a disk made smaller than the
// partitions it keeps (SMS.6539). (Ids the source does not have are refused
// before, by the service.) `adjust_size` 0 (the documented default)
// means "keep the source's size"; a volume with `need_migration: false` is
// left out of the target, so neither its size nor its use counts. Pure: the
// service calls these inside its transaction.

import type { PutDisk } from '../sms/schemas/index.js';
import { num } from '../sms/target-server.js';
import { badRequest } from './api-error.js';

type Rec = Record<string, unknown>;

/** The size a volume will have on the target: its adjust_size when one is given (> 0), else its registered size. */
export function adjustedSize(adjust: number | undefined, registered: unknown): number {
  return adjust !== undefined && adjust > 0 ? adjust : num(registered);
}

/** One disk's choices (`d.id` already known to exist) against the disk as registered. */
export function checkDiskAdjustment(d: PutDisk, disk: Rec): void {
  const pvs = (disk.physical_volumes as Rec[] | undefined) ?? [];
  const byId = new Map((d.physical_volumes ?? []).map((p) => [p.id ?? '', p]));
  let kept = 0;
  pvs.forEach((p, j) => {
    const a = byId.get(`${d.id}_${j}`);
    if (a?.need_migration === false) return;
    const size = adjustedSize(a?.adjust_size, p.size);
    const used = num(p.used_size);
    if (a?.adjust_size && size < used) {
      throw badRequest(
        'SMS.6538',
        `The new partition or logical volume size is less than the used space size: ${String(p.name ?? `${d.id}_${j}`)} uses ${used} bytes; adjust_size ${size} is smaller. Give it at least the used size plus a margin.`,
        [`${d.id}_${j}`],
      );
    }
    kept += size;
  });
  if (d.need_migration !== false && d.adjust_size > 0 && d.adjust_size < kept) {
    throw badRequest(
      'SMS.6539',
      `The disk space is less than the total size of all partitions: disk ${d.id} (${String(disk.name ?? '')}) adjust_size ${d.adjust_size} bytes, its migrated partitions take ${kept} bytes. Make the disk larger, or shrink or leave out partitions.`,
      [d.id],
    );
  }
}

/** One volume group's choices against the group as registered (LVs are named by their `name`, as GET /v3/sources shows them). */
export function checkVolumeGroupAdjustment(v: { id: string; logical_volumes?: { id: string; need_migration?: boolean; adjust_size?: number }[] | undefined }, vg: Rec): void {
  const lvs = (vg.logical_volumes as Rec[] | undefined) ?? [];
  const byName = new Map(lvs.map((lv) => [String(lv.name ?? ''), lv]));
  for (const a of v.logical_volumes ?? []) {
    const lv = byName.get(a.id);
    if (!lv || a.need_migration === false || !a.adjust_size) continue;
    const used = num(lv.used_size);
    if (a.adjust_size < used) {
      throw badRequest(
        'SMS.6538',
        `The new partition or logical volume size is less than the used space size: ${a.id} uses ${used} bytes; adjust_size ${a.adjust_size} is smaller. Give it at least the used size plus a margin.`,
        [a.id],
      );
    }
  }
}
