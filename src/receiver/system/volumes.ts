// The volumes of a laid-out system, as the agent copies them (VolumeTarget,
// layout/system-session.ts) and as the receiver serves them (a target path per
// volume). File mode: every file system is a 'file' volume into its mounted
// directory (Btrfs: the top level 'PARTID' and one per subvolume
// 'PARTID:PATH', all under the top level's mount), except vfat and BIOS boot
// partitions, which are 'block' volumes into their partition device; swap is
// recreated and partitions with nothing on them are not copied. Block mode:
// the whole disk when isWholeDiskCopy says so, else each partition but
// extended partitions and swap. Pure: no I/O.

import type { CopyMode, Disk, Layout, Partition } from '../../layout/model.js';
import type { VolumeTarget } from '../../layout/system-session.js';
import { isExtended } from './partition-table.js';
import type { SystemPaths } from './system-paths.js';

export const BIOS_BOOT_TYPE = '21686148-6449-6E6F-744E-656564454649';

export interface ServedVolume {
  volume: VolumeTarget;
  /** The receiver target's path: a directory (file) or a block device (block). */
  path: string;
  /** The device holding it (the disk itself for a whole-disk volume). */
  device: string;
  /** Whole-disk volumes: the layout's disk. */
  disk?: Disk;
}

export interface VolumeInputs {
  mode: CopyMode;
  layout: Layout;
  paths: SystemPaths;
  /** Volume id (partition or LV) → its device. */
  devices: Map<string, string>;
  /** Disk name → { device, sizeBytes, wholeDisk } of the target disk. */
  disks: Map<string, { device: string; sizeBytes: number; wholeDisk: boolean }>;
  /** Partition id → 'vg/lv' where a logical volume became a partition. */
  flattenedFrom: Map<string, string>;
}

/** The directory a mounted file system volume is copied into. */
export function fileVolumePath(paths: SystemPaths, id: string, mountPoint: string): string {
  return mountPoint ? paths.inRoot(mountPoint) : paths.unmounted(id);
}

export function volumesOf(o: VolumeInputs): ServedVolume[] {
  const out: ServedVolume[] = [];
  const block = (id: string, device: string, sizeBytes: number, p: Partial<VolumeTarget>) =>
    out.push({ volume: { id, kind: 'block', target: o.paths.targetName(id), sizeBytes, fsType: '', mountPoint: '', ...p }, path: device, device });

  for (const d of o.layout.disks) {
    const target = o.disks.get(d.name)!;
    if (o.mode === 'block' && target.wholeDisk) {
      out.push({
        volume: { id: d.name, kind: 'block', target: o.paths.targetName(d.name), sizeBytes: target.sizeBytes, fsType: '', mountPoint: '', wholeDisk: true },
        path: target.device,
        device: target.device,
        disk: d,
      });
      continue;
    }
    for (const p of d.partitions) {
      const device = o.devices.get(p.id)!;
      const flat = o.flattenedFrom.get(p.id);
      const extra = flat ? { flattenedFrom: flat } : {};
      if (o.mode === 'block') {
        if (isExtended(d, p) || p.content.kind === 'swap') continue;
        block(p.id, device, p.sizeBytes, { fsType: fsTypeOf(p), mountPoint: p.content.kind === 'filesystem' ? p.content.mountPoint : '', ...extra });
        continue;
      }
      if (p.type.toUpperCase() === BIOS_BOOT_TYPE) {
        block(p.id, device, p.sizeBytes, extra);
        continue;
      }
      out.push(...fileVolumes(o, p.id, p.sizeBytes, p.content, device, extra));
    }
  }
  for (const vg of o.layout.volumeGroups) {
    for (const lv of vg.logicalVolumes) {
      const device = o.devices.get(lv.id);
      if (o.mode === 'file' && device) out.push(...fileVolumes(o, lv.id, lv.sizeBytes, lv.content, device, {}));
    }
  }
  return out;
}

function fsTypeOf(p: Partition): VolumeTarget['fsType'] {
  return p.content.kind === 'filesystem' ? p.content.fsType : p.content.kind === 'swap' ? 'swap' : '';
}

function fileVolumes(o: VolumeInputs, id: string, sizeBytes: number, c: Partition['content'], device: string, extra: Partial<VolumeTarget>): ServedVolume[] {
  if (c.kind !== 'filesystem') return [];
  if (c.fsType === 'vfat') {
    return [{ volume: { id, kind: 'block', target: o.paths.targetName(id), sizeBytes, fsType: 'vfat', mountPoint: c.mountPoint, ...extra }, path: device, device }];
  }
  const file = (vid: string, path: string, mountPoint: string, subvolume?: string): ServedVolume => ({
    volume: { id: vid, kind: 'file', target: o.paths.targetName(vid), sizeBytes, fsType: c.fsType, mountPoint, ...(subvolume !== undefined ? { subvolume } : {}), ...extra },
    path,
    device,
  });
  if (c.fsType !== 'btrfs') return [file(id, fileVolumePath(o.paths, id, c.mountPoint), c.mountPoint)];
  const top = o.paths.btrfsTop(id);
  // The top level is where the source mounts the file system only when no default subvolume stands in for it.
  return [file(id, top, c.defaultSubvolume ? '' : c.mountPoint, ''), ...c.subvolumes.map((s) => file(`${id}:${s.path}`, `${top}/${s.path}`, s.mountPoint, s.path))];
}
