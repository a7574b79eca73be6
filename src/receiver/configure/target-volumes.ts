// The target's file systems and swap as the configuration rewrites see them
// (pure): for each volume of the layout as made, its target UUID and label,
// the source's UUID, device and mount point, and the 'vg/lv' it was when a
// logical volume became a partition; and the resolver that says which target
// volume an fstab/crypttab/kernel-command-line device spec names
// ('/dev/sda2', '/dev/mapper/vg-root', '/dev/vg/root', 'UUID=…', 'LABEL=…').
// Must not touch: files or devices (the callers own I/O).

import type { Content, Layout } from '../../layout/model.js';

export interface TargetVolume {
  id: string;
  kind: 'filesystem' | 'swap';
  /** 'swap' for swap. */
  fsType: string;
  /** The UUID of the target's file system (or swap). */
  uuid: string;
  /** The source's UUID (differs from `uuid` only when the receiver had to make a new one). */
  sourceUuid: string;
  label: string;
  /** Source mount point ('' when none). */
  mountPoint: string;
  /** The source's device ('/dev/sda2', '/dev/mapper/vg-root'). */
  sourceDevice: string;
  /** 'vg/lv' when a logical volume of the source became this partition. */
  flattenedFrom?: string;
  /** A logical volume that stays one on the target (the receiver has device-mapper). */
  keptLv?: boolean;
  /** btrfs: the subvolumes the source mounts ('@' at '/'), when `mountPoint` is not the whole story. */
  subvolumeMounts?: Array<{ path: string; mountPoint: string }>;
}

type Made = Extract<Content, { kind: 'filesystem' | 'swap' }>;
const isMade = (c: Content): c is Made => c.kind === 'filesystem' || c.kind === 'swap';

/** The target volumes of `made`, with what the source called them taken from `requested` (same ids). */
export function targetVolumes(requested: Layout, made: Layout): TargetVolume[] {
  const lvOf = new Map<string, { vg: string; lv: string; uuid: string; sourceDevice: string }>();
  for (const vg of requested.volumeGroups) {
    for (const lv of vg.logicalVolumes) lvOf.set(lv.id, { vg: vg.name, lv: lv.name, uuid: isMade(lv.content) ? lv.content.uuid : '', sourceDevice: lv.sourceDevice });
  }
  const sourceUuid = new Map<string, string>();
  for (const p of requested.disks.flatMap((d) => d.partitions)) if (isMade(p.content)) sourceUuid.set(p.id, p.content.uuid);
  const stillLvm = new Set(made.volumeGroups.map((v) => v.name));
  const out: TargetVolume[] = [];
  const add = (id: string, c: Content, sourceDevice: string, keptLv = false) => {
    if (!isMade(c)) return;
    const lv = lvOf.get(id);
    out.push({
      id,
      kind: c.kind,
      fsType: c.kind === 'swap' ? 'swap' : c.fsType,
      uuid: c.uuid,
      sourceUuid: sourceUuid.get(id) ?? lv?.uuid ?? c.uuid,
      label: c.label,
      mountPoint: c.kind === 'filesystem' ? c.mountPoint : '',
      sourceDevice: sourceDevice || lv?.sourceDevice || '',
      ...(lv && !stillLvm.has(lv.vg) ? { flattenedFrom: `${lv.vg}/${lv.lv}` } : {}),
      ...(keptLv ? { keptLv } : {}),
      ...(c.kind === 'filesystem' && c.subvolumes.some((x) => x.mountPoint) ? { subvolumeMounts: c.subvolumes.filter((x) => x.mountPoint).map((x) => ({ path: x.path, mountPoint: x.mountPoint })) } : {}),
    });
  };
  for (const p of made.disks.flatMap((d) => d.partitions)) add(p.id, p.content, p.sourceDevice);
  for (const vg of made.volumeGroups) for (const lv of vg.logicalVolumes) add(lv.id, lv.content, lv.sourceDevice, true);
  return out;
}

/**
 * The file system the source mounts at `mountPoint`: one mounted there whole,
 * or a btrfs one of whose subvolumes is mounted there (a root on '@' is the
 * common case), with that subvolume's path ('' when mounted whole).
 */
export function volumeMountedAt(volumes: readonly TargetVolume[], mountPoint: string): { volume: TargetVolume; subvolume: string } | undefined {
  const fss = volumes.filter((v) => v.kind === 'filesystem');
  const whole = fss.find((v) => v.mountPoint === mountPoint);
  if (whole) return { volume: whole, subvolume: '' };
  for (const v of fss) {
    const sub = v.subvolumeMounts?.find((x) => x.mountPoint === mountPoint);
    if (sub) return { volume: v, subvolume: sub.path };
  }
  return undefined;
}

/** device-mapper's name of vg/lv: each '-' doubled, joined by '-'. */
export const mapperName = (vgLv: string) => vgLv.split('/').map((s) => s.replace(/-/g, '--')).join('-');

const unquote = (s: string) => s.replace(/^"(.*)"$/, '$1');

/** How a device spec is to be written on the target: a volume and whether the spec must change. */
export interface Resolution {
  volume: TargetVolume;
  /** The spec to write ('UUID=…'), or undefined when the given one is valid on the target. */
  rewrite?: string;
}

export class DeviceResolver {
  constructor(readonly volumes: readonly TargetVolume[]) {}

  /** The spec that names `v` on the target: by UUID when it has one, else by label. */
  specOf(v: TargetVolume): string | undefined {
    if (v.uuid) return `UUID=${v.uuid}`;
    if (v.label) return `LABEL=${v.label}`;
    return undefined;
  }

  /**
   * Which target volume `spec` names, and what to write instead when the
   * target will not have it: a device path (the target's disks get other
   * names: virtio, nvme), an LV's /dev/mapper or /dev/VG path when it became
   * a partition, a UUID the target's file system does not have. `mountPoint`
   * (fstab) and `swap` help where the device path is not one the layout knows.
   */
  resolve(spec: string, hint: { mountPoint?: string; swap?: boolean } = {}): Resolution | undefined {
    const s = unquote(spec.trim());
    const uuid = /^UUID=(.+)$/i.exec(s)?.[1] ?? /^\/dev\/disk\/by-uuid\/(.+)$/.exec(s)?.[1];
    if (uuid !== undefined) {
      const u = unquote(uuid).toLowerCase();
      const v = this.volumes.find((x) => x.uuid.toLowerCase() === u) ?? this.volumes.find((x) => x.sourceUuid.toLowerCase() === u);
      if (!v) return undefined;
      return v.uuid.toLowerCase() === u ? { volume: v } : { volume: v, ...this.rewriteTo(v) };
    }
    const label = /^LABEL=(.+)$/i.exec(s)?.[1] ?? /^\/dev\/disk\/by-label\/(.+)$/.exec(s)?.[1];
    if (label !== undefined) {
      const v = this.volumes.find((x) => x.label === unquote(label));
      return v ? { volume: v } : undefined;
    }
    // PARTUUID=, PARTLABEL= and their /dev/disk paths: the receiver keeps partition UUIDs and names.
    if (/^(PARTUUID|PARTLABEL)=/i.test(s) || /^\/dev\/disk\/by-part(uuid|label)\//.test(s)) return undefined;
    if (!s.startsWith('/dev/')) return undefined;
    const flat = this.volumes.find((x) => x.flattenedFrom && (s === `/dev/mapper/${mapperName(x.flattenedFrom)}` || s === `/dev/${x.flattenedFrom}`));
    if (flat) return { volume: flat, ...this.rewriteTo(flat) };
    // Other device-mapper names (LVs kept as LVs, LUKS mappings) stay valid on the target.
    if (s.startsWith('/dev/mapper/') || s.startsWith('/dev/dm-')) return undefined;
    const v =
      this.volumes.find((x) => x.sourceDevice === s) ??
      (hint.mountPoint ? volumeMountedAt(this.volumes, hint.mountPoint)?.volume : undefined) ??
      (hint.swap ? this.onlySwap() : undefined);
    if (!v) return undefined;
    // /dev/VG/LV of an LV the target still has as an LV.
    if (v.keptLv && v.sourceDevice === s) return { volume: v };
    return { volume: v, ...this.rewriteTo(v) };
  }

  private onlySwap(): TargetVolume | undefined {
    const swaps = this.volumes.filter((x) => x.kind === 'swap');
    return swaps.length === 1 ? swaps[0] : undefined;
  }

  private rewriteTo(v: TargetVolume): { rewrite?: string } {
    const spec = this.specOf(v);
    return spec ? { rewrite: spec } : {};
  }
}
