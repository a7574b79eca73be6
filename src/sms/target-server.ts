// The target layout of a migration task (`target_server`, table 4-99) built
// from what the source registered (GET /v3/sources/{id}, table 4-63): one
// target disk per source disk with the same partitions, and the source's
// volume groups and logical volumes. A pure transform of one SMS shape into
// another: no I/O, no defaults beyond what the tables need. `ferry tasks
// create` uses it; so can anything else that creates a task from a source.

import type { SourceDetails } from './schemas/source-read.js';
import type { TaskCreate } from './schemas/task.js';

export type TargetServer = TaskCreate['target_server'];

type Rec = Record<string, unknown>;
/** A size or count the tables want as a non-negative integer; 0 when the source left it out. */
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
const text = (v: unknown) => (typeof v === 'string' ? v : '');

/** The target layout of a task: the source's disks and volume groups, as table 4-99 wants them. */
export function targetServerFromSource(src: SourceDetails): TargetServer {
  const disks = ((src.disks ?? []) as Rec[]).map((d) => ({
    name: text(d.name),
    size: num(d.size),
    used_size: num(d.used_size),
    device_use: (['BOOT', 'OS'].includes(text(d.device_use)) ? text(d.device_use) : 'NORMAL') as 'BOOT' | 'OS' | 'NORMAL',
    physical_volumes: ((d.physical_volumes ?? []) as Rec[]).map((p, i) => ({
      name: text(p.name),
      size: num(p.size),
      used_size: num(p.used_size),
      index: typeof p.index === 'number' ? p.index : i,
      ...(p.file_system ? { file_system: text(p.file_system) } : {}),
      ...(p.mount_point ? { mount_point: text(p.mount_point) } : {}),
      ...(p.device_use ? { device_use: text(p.device_use) } : {}),
      ...(p.uuid ? { uuid: text(p.uuid) } : {}),
    })),
  }));
  const volume_groups = ((src.volume_groups ?? []) as Rec[]).map((vg) => ({
    name: text(vg.name),
    size: num(vg.size),
    free_size: num(vg.free_size),
    ...(vg.components ? { components: text(vg.components) } : {}),
    logical_volumes: ((vg.logical_volumes ?? []) as Rec[]).map((lv) => ({
      name: text(lv.name),
      size: num(lv.size),
      used_size: num(lv.used_size),
      free_size: num(lv.free_size),
      file_system: text(lv.file_system),
      mount_point: text(lv.mount_point),
      inode_size: num(lv.inode_size),
    })),
  }));
  return { vm_id: `ferry-target-${src.id}`, name: `${src.name ?? src.id}-target`, disks, volume_groups };
}
