// Fills in where each volume of a given target layout is read from on this
// source: a layout from a file or a task's target_server (sms-mapping.ts)
// says what to make on the target disks, not which source device holds
// what. Each target partition or logical volume is matched to the discovered
// source one with the same file system UUID, else the same mount point, else
// the same id (disk N, partition M); each target disk to the source disk of
// the same name, else of the same place. Pure: layouts in, layout out.

import { layoutVolumes, type Content, type Disk, type Layout, type LogicalVolume, type Partition } from '../layout/model.js';

type Volume = Partition | LogicalVolume;

function uuidOf(c: Content): string {
  return c.kind === 'filesystem' || c.kind === 'swap' || c.kind === 'lvm-pv' ? c.uuid.toLowerCase() : '';
}

function mountOf(c: Content): string {
  return c.kind === 'filesystem' ? c.mountPoint : '';
}

function match(target: Volume, sources: Volume[]): Volume | undefined {
  const uuid = uuidOf(target.content);
  if (uuid) {
    const m = sources.find((s) => uuidOf(s.content) === uuid);
    if (m) return m;
  }
  const mp = mountOf(target.content);
  if (mp) {
    const m = sources.find((s) => mountOf(s.content) === mp);
    if (m) return m;
  }
  return sources.find((s) => s.id === target.id);
}

/** `target` with every empty sourceDevice filled from the matching part of `source` (left empty where nothing matches). */
export function attachSources(target: Layout, source: Layout): Layout {
  const volumes = layoutVolumes(source);
  const fill = <V extends Volume>(v: V): V => (v.sourceDevice ? v : { ...v, sourceDevice: match(v, volumes)?.sourceDevice ?? '' });
  const disk = (d: Disk, i: number): Disk => ({
    ...d,
    sourceDevice: d.sourceDevice || (source.disks.find((s) => s.name === d.name) ?? source.disks[i])?.sourceDevice || '',
    partitions: d.partitions.map(fill),
  });
  return {
    ...target,
    disks: target.disks.map(disk),
    volumeGroups: target.volumeGroups.map((g) => ({ ...g, logicalVolumes: g.logicalVolumes.map(fill) })),
  };
}
