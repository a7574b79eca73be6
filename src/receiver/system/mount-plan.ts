// Which file systems a laid-out system mounts, where and how (pure): each
// Btrfs top level (subvolid=5) under btrfs/PARTID first, then the target tree
// in mount order (fewest path components first: '/' before '/boot' before
// '/boot/efi') under root/ (Btrfs subvolumes with subvol=PATH; xfs with
// nouuid, since the source's file system with the same UUID may be mounted on
// the same machine), then file systems with no mount point under
// unmounted/ID. vfat is never mounted (the agent copies ESPs as blocks; this
// kernel cannot mount vfat) and swap is not a file system.

import type { Content, Layout } from '../../layout/model.js';
import type { SystemPaths } from './system-paths.js';

export interface PlannedMount {
  device: string;
  dir: string;
  options: string[];
  /** Set for a Btrfs top level: its subvolumes are created there when the layout is new. */
  btrfs?: Extract<Content, { kind: 'filesystem' }>;
}

const depth = (mp: string) => mp.split('/').filter(Boolean).length;

export function planMounts(layout: Layout, devices: Map<string, string>, paths: SystemPaths): PlannedMount[] {
  const tops: PlannedMount[] = [];
  const tree: Array<PlannedMount & { mountPoint: string }> = [];
  const loose: PlannedMount[] = [];
  const volumes = [...layout.disks.flatMap((d) => d.partitions), ...layout.volumeGroups.flatMap((v) => v.logicalVolumes)];
  for (const v of volumes) {
    const c = v.content;
    const device = devices.get(v.id);
    if (c.kind !== 'filesystem' || c.fsType === 'vfat' || !device) continue;
    const base = c.fsType === 'xfs' ? ['nouuid'] : [];
    if (c.fsType === 'btrfs') {
      tops.push({ device, dir: paths.btrfsTop(v.id), options: ['subvolid=5'], btrfs: c });
      for (const s of c.subvolumes) if (s.mountPoint) tree.push({ device, dir: paths.inRoot(s.mountPoint), options: [`subvol=${s.path}`], mountPoint: s.mountPoint });
      if (c.mountPoint && !c.subvolumes.some((s) => s.mountPoint === c.mountPoint)) {
        tree.push({ device, dir: paths.inRoot(c.mountPoint), options: [c.defaultSubvolume ? `subvol=${c.defaultSubvolume}` : 'subvolid=5'], mountPoint: c.mountPoint });
      }
      continue;
    }
    if (c.mountPoint) tree.push({ device, dir: paths.inRoot(c.mountPoint), options: base, mountPoint: c.mountPoint });
    else loose.push({ device, dir: paths.unmounted(v.id), options: base });
  }
  tree.sort((a, b) => depth(a.mountPoint) - depth(b.mountPoint) || a.mountPoint.localeCompare(b.mountPoint));
  return [...tops, ...tree.map(({ mountPoint: _, ...m }) => m), ...loose];
}
