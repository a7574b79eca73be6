// The target layout of a migration task (`target_server`, table 4-99) built
// from what the source registered (GET /v3/sources/{id}, table 4-63): one
// target disk per source disk with the same partitions, and the source's
// volume groups and logical volumes, less what the operator left out and
// resized with PUT /v3/sources/{id}. A pure transform of one SMS shape into
// another: no I/O, no defaults beyond what the tables need. `ferry tasks
// create` uses it; so can anything else that creates a task from a source.

import type { SourceDetails } from './schemas/source-read.js';
import type { TaskCreate } from './schemas/task.js';

export type TargetServer = TaskCreate['target_server'];

type Rec = Record<string, unknown>;
/** A size or count the tables want as a non-negative integer; 0 when the source left it out. */
export const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
const text = (v: unknown) => (typeof v === 'string' ? v : '');

/** The size a volume gets on the target: the operator's adjust_size when set (> 0; 0 is the documented default), else the source's. */
const adjusted = (o: Rec) => (num(o.adjust_size) > 0 ? num(o.adjust_size) : num(o.size));
/** Left out by the operator (PUT /v3/sources, need_migration false). */
const leftOut = (o: Rec) => o.need_migration === false;
/**
 * An MBR extended partition as Linux reports it: no file system and a size
 * of one or two sectors (the kernel's block device covers only the link to
 * the first logical partition, not the extent holding them). Its size says
 * nothing about the target: it is left out, and the layout keeps the
 * source's extent (layout/sms-mapping.ts takes an absent size as "as it is").
 */
const extendedContainer = (d: Rec, p: Rec) => text(d.partition_style) !== 'GPT' && !p.file_system && num(p.size) > 0 && num(p.size) <= 4096;

/**
 * The target layout of a task: the source's disks and volume groups, as
 * table 4-99 wants them, with the operator's choices of PUT /v3/sources
 * (tables 4-43 to 4-46, shown back by GET /v3/sources/{id}): a disk,
 * partition, volume group or logical volume with `need_migration: false` is
 * not in it, one with an `adjust_size` has that size. A disk whose
 * partitions changed so carries their total as its used size.
 */
export function targetServerFromSource(src: SourceDetails): TargetServer {
  const disks = ((src.disks ?? []) as Rec[]).filter((d) => !leftOut(d)).map((d) => {
    const all = (d.physical_volumes ?? []) as Rec[];
    const kept = all.map((p, i) => ({ p, i })).filter(({ p }) => !leftOut(p));
    const physical_volumes = kept.map(({ p, i }) => ({
        name: text(p.name),
        ...(extendedContainer(d, p) ? {} : { size: adjusted(p), used_size: num(p.used_size) }),
        index: typeof p.index === 'number' ? p.index : i,
        ...(p.file_system ? { file_system: text(p.file_system) } : {}),
        ...(p.mount_point ? { mount_point: text(p.mount_point) } : {}),
        ...(p.device_use ? { device_use: text(p.device_use) } : {}),
        ...(p.uuid ? { uuid: text(p.uuid) } : {}),
      }));
    const changed = kept.length !== all.length || kept.some(({ p }) => adjusted(p) !== num(p.size));
    const sizes = physical_volumes.reduce((n, p) => n + (p.size ?? 0), 0);
    return {
      name: text(d.name),
      size: adjusted(d),
      used_size: changed ? sizes : num(d.used_size),
      device_use: (['BOOT', 'OS'].includes(text(d.device_use)) ? text(d.device_use) : 'NORMAL') as 'BOOT' | 'OS' | 'NORMAL',
      physical_volumes,
    };
  });
  const volume_groups = ((src.volume_groups ?? []) as Rec[]).filter((vg) => !leftOut(vg)).map((vg) => ({
    name: text(vg.name),
    size: adjusted(vg),
    free_size: num(vg.free_size),
    ...(vg.components ? { components: text(vg.components) } : {}),
    logical_volumes: ((vg.logical_volumes ?? []) as Rec[]).filter((lv) => !leftOut(lv)).map((lv) => ({
      name: text(lv.name),
      size: adjusted(lv),
      used_size: num(lv.used_size),
      free_size: num(lv.free_size),
      file_system: text(lv.file_system),
      mount_point: text(lv.mount_point),
      inode_size: num(lv.inode_size),
    })),
  }));
  return { vm_id: `ferry-target-${src.id}`, name: `${src.name ?? src.id}-target`, disks, volume_groups };
}
