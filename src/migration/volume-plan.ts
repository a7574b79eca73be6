// Which source each volume the receiver named is copied from, and which
// parts of the layout are not copied and why. The receiver's layout reply
// lists the volumes to copy (VolumeTarget: a partition, a logical volume, a
// Btrfs subvolume or top level, a whole disk); the layout the agent sent
// knows the source devices. Pure: no mounts, no devices opened (whether an
// LV's device exists is asked through `exists`).

import type { Content, Disk, Layout, LogicalVolume, Partition } from '../layout/model.js';
import type { VolumeTarget } from '../layout/system-session.js';

/** Where one volume is read from. */
export type VolumeSource =
  /** Bytes of a device (block volumes: a partition, a whole disk, an ESP at file level). */
  | { kind: 'device'; device: string }
  /** A file system other than Btrfs: its mount point under the source root when it is mounted there, else the agent mounts the device. */
  | { kind: 'filesystem'; device: string; fsType: string; mountPoint: string }
  /** A Btrfs file system: its top level is mounted read-only, the volume is `subvolume` below it ('' = the top level itself). */
  | { kind: 'btrfs'; device: string; partitionId: string; subvolume: string }
  /** Nothing to read: the reason goes into the summary. */
  | { kind: 'skip'; reason: string };

export interface VolumeJob {
  target: VolumeTarget;
  source: VolumeSource;
  /**
   * About how many bytes the copy reads, for the order volumes are started
   * in (startOrder): a file system's used bytes as discovered (a Btrfs
   * subvolume or top level: the whole file system's, an upper bound, since
   * Btrfs keeps no figure per subvolume without quotas), a block volume's
   * size, 0 when skipped.
   */
  readBytes: number;
}

/** A part of the layout that no volume copies. */
export interface LeftOut {
  id: string;
  reason: string;
  fsType: string;
  mountPoint: string;
}

interface Found {
  volume: Partition | LogicalVolume;
  /** 'vg/lv' for a logical volume. */
  lv?: string;
}

function index(layout: Layout): { disks: Map<string, Disk>; volumes: Map<string, Found>; byLvName: Map<string, Found> } {
  const disks = new Map<string, Disk>();
  const volumes = new Map<string, Found>();
  const byLvName = new Map<string, Found>();
  for (const d of layout.disks) {
    disks.set(d.name, d);
    for (const p of d.partitions) volumes.set(p.id, { volume: p });
  }
  for (const g of layout.volumeGroups) {
    for (const lv of g.logicalVolumes) {
      const f = { volume: lv, lv: `${g.name}/${lv.name}` };
      volumes.set(lv.id, f);
      byLvName.set(f.lv, f);
    }
  }
  return { disks, volumes, byLvName };
}

function fsTypeOf(c: Content): string {
  return c.kind === 'filesystem' ? c.fsType : c.kind === 'swap' ? 'swap' : '';
}

/** The partition or LV id a volume target stands for ('disk0p5:@home' → 'disk0p5'). */
export function baseId(t: VolumeTarget): string {
  const i = t.id.indexOf(':');
  return i < 0 ? t.id : t.id.slice(0, i);
}

/**
 * Pairs each volume target with its source. `sent` is the layout the agent
 * asked for (it carries sourceDevice); `exists` says whether a device node
 * is there (an LV whose VG is not active on the source has none).
 */
export function planVolumes(sent: Layout, targets: VolumeTarget[], exists: (device: string) => boolean): VolumeJob[] {
  const ix = index(sent);
  const skip = (target: VolumeTarget, reason: string): VolumeJob => ({ target, source: { kind: 'skip', reason }, readBytes: 0 });
  return targets.map((target): VolumeJob => {
    if (target.kind === 'block' && target.wholeDisk) {
      const disk = ix.disks.get(target.id);
      if (!disk?.sourceDevice) return skip(target, `no source disk matches target disk ${target.id}`);
      return { target, source: { kind: 'device', device: disk.sourceDevice }, readBytes: disk.sizeBytes };
    }
    const found = ix.volumes.get(baseId(target)) ?? (target.flattenedFrom ? ix.byLvName.get(target.flattenedFrom) : undefined);
    if (!found) return skip(target, `the layout sent has no partition or logical volume ${baseId(target)}`);
    const device = found.volume.sourceDevice;
    if (!device) return skip(target, `no source device matches ${baseId(target)}`);
    if (found.lv && !exists(device)) {
      return skip(target, `logical volume ${found.lv} is not active on the source (no ${device}): laid out, not copied`);
    }
    const size = found.volume.sourceSizeBytes ?? found.volume.sizeBytes;
    if (target.kind === 'block') return { target, source: { kind: 'device', device }, readBytes: size };
    const c = found.volume.content;
    const used = c.kind === 'filesystem' ? c.usedBytes : size;
    const fsType = target.fsType || fsTypeOf(c);
    if (fsType === 'btrfs') return { target, source: { kind: 'btrfs', device, partitionId: baseId(target), subvolume: target.subvolume ?? '' }, readBytes: used };
    if (c.kind !== 'filesystem') return skip(target, `${baseId(target)} holds no file system to copy at file level`);
    return { target, source: { kind: 'filesystem', device, fsType, mountPoint: c.mountPoint }, readBytes: used };
  });
}

/**
 * The source file systems a file-level copy of `sent` will read, as the
 * layout sent suggests them (the receiver's reply decides): the agent mounts
 * them read-only while the receiver lays out, so that a lane's first volume
 * does not wait for its mount (two `mount` processes, 0.1-0.2 s each on the
 * whole-server benchmark under load). Keys are the ones copyVolume asks
 * SourceMounts for: the partition's or LV's id. A guess that misses costs a
 * read-only mount released at the end; one that is wrong costs nothing (the
 * copy mounts under its own key). vfat is left out: the receiver copies an
 * ESP as blocks (receiver/system/volumes.ts).
 */
export function expectedSources(sent: Layout, exists: (device: string) => boolean): { key: string; source: VolumeSource }[] {
  const out: { key: string; source: VolumeSource }[] = [];
  const add = (v: Partition | LogicalVolume, lv: boolean) => {
    const c = v.content;
    const device = v.sourceDevice;
    if (c.kind !== 'filesystem' || !device || c.fsType === 'vfat' || (lv && !exists(device))) return;
    out.push({
      key: v.id,
      source: c.fsType === 'btrfs' ? { kind: 'btrfs', device, partitionId: v.id, subvolume: '' } : { kind: 'filesystem', device, fsType: c.fsType, mountPoint: c.mountPoint },
    });
  };
  for (const d of sent.disks) for (const p of d.partitions) add(p, false);
  for (const g of sent.volumeGroups) for (const lv of g.logicalVolumes) add(lv, true);
  return out;
}

/**
 * The order volumes are started in: the most bytes to read first, the
 * layout's order among equals. With volumes copied two at a time, a large
 * volume started last leaves one lane copying alone at the end while the
 * other idles (on the whole-server benchmark the lanes ended 1.9 s apart in
 * the layout's order); largest first, the small ones fill in at the end.
 */
export function startOrder<T extends { job: VolumeJob }>(planned: readonly T[]): T[] {
  return [...planned].sort((a, b) => b.job.readBytes - a.job.readBytes);
}

/**
 * A volume that reads at most this much is small: its copy is mostly fixed
 * costs — a source mount, a session, the receiver's sync of its target —
 * that wait on other processes and the disk more than they use the CPU.
 * Measured on the whole-server benchmark (test/bench/system.mjs, 2026-12-06):
 * five such volumes (/boot, /var/log, /opt, the ESP and BIOS boot partition)
 * took 0.1–0.6 s each, and copied last, largest first, they added about 1 s
 * after the two large lanes had ended.
 */
export const SMALL_VOLUME_BYTES = 64 * 2 ** 20;

/**
 * The copy's lanes: `shared` volumes take turns on the `parallel` lanes,
 * largest first (startOrder); with two lanes or more, the small ones (at
 * most SMALL_VOLUME_BYTES to read, and the skipped) go one at a time in a
 * lane of their own beside them, so their fixed costs overlap the large
 * copies instead of following them. With one lane, everything takes turns
 * on it. A Btrfs subvolume counts the whole file system's bytes (readBytes):
 * it is never taken for small unless the whole file system is.
 */
export function copyLanes<T extends { job: VolumeJob }>(planned: readonly T[], parallel: number): { shared: T[]; small: T[] } {
  const ordered = startOrder(planned);
  if (parallel < 2) return { shared: ordered, small: [] };
  const isSmall = (p: T) => p.job.readBytes <= SMALL_VOLUME_BYTES;
  return { shared: ordered.filter((p) => !isSmall(p)), small: ordered.filter(isSmall) };
}

function reasonFor(c: Content): string {
  switch (c.kind) {
    case 'swap':
      return 'swap: recreated on the target with its UUID and label, not copied';
    case 'none':
      return 'no file system (a BIOS boot, extended or unformatted partition, or an LV without one): laid out, not copied';
    case 'lvm-pv':
      return `LVM physical volume of ${c.vg}: its logical volumes are the volumes copied`;
    case 'filesystem':
      return 'the receiver named no target for it';
  }
}

/** Every partition and logical volume of `made` that no volume target copies, with the reason. */
export function leftOut(made: Layout, targets: VolumeTarget[]): LeftOut[] {
  const copied = new Set(targets.map(baseId));
  for (const t of targets) if (t.flattenedFrom) copied.add(t.flattenedFrom);
  const whole = new Set(targets.filter((t) => t.kind === 'block' && t.wholeDisk).map((t) => t.id));
  const out: LeftOut[] = [];
  const add = (id: string, c: Content) => out.push({ id, reason: reasonFor(c), fsType: fsTypeOf(c), mountPoint: c.kind === 'filesystem' ? c.mountPoint : '' });
  for (const d of made.disks) {
    if (whole.has(d.name)) continue;
    for (const p of d.partitions) if (!copied.has(p.id)) add(p.id, p.content);
  }
  for (const g of made.volumeGroups) {
    for (const lv of g.logicalVolumes) if (!copied.has(lv.id) && !copied.has(`${g.name}/${lv.name}`)) add(lv.id, lv.content);
  }
  return out;
}
