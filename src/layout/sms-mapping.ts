// A task's `target_server` (SMS tables 4-99, 4-102 to 4-105, 4-100/4-101 for
// Btrfs) to and from a Layout. The tables carry disk names and sizes, each
// partition's index, size, used size, file system, mount point, UUID and
// use, the volume groups and LVs, the Btrfs file systems and subvolumes; the
// rest of a layout rides in ferry extension fields (src/sms/schemas/task.ts,
// docs/local-control-plane.md): `partition_style` and `table_id` on a disk;
// `partition_type`, `partition_name`, `partition_uuid`, `flags`, `bootable`,
// `logical`, `start`, `label`, `need_migration`, `adjust_size` on a physical
// volume; `uuid`, `label`, `need_migration`, `adjust_size` on an LV; `uuid`,
// `extent_size` on a VG. Mapping back starts from the source's own layout and
// takes from the target_server what it says. Pure.

import type { z } from 'zod';
import { FerryError } from '../errors/ferry-error.js';
import type { targetServerByTaskSchema, taskPhysicalVolumeSchema } from '../sms/schemas/task.js';
import { isExtended } from './geometry.js';
import { FILE_SYSTEMS, LAYOUT_VERSION, type Content, type Disk, type FileSystemType, type Layout, type Partition } from './model.js';

export type TargetServer = z.input<typeof targetServerByTaskSchema>;
type TargetPv = z.input<typeof taskPhysicalVolumeSchema>;

const SECTOR = 512;

function useOf(mountPoint: string, content: Content): string {
  if (content.kind === 'lvm-pv') return 'VOLUME_GROUP';
  if (content.kind === 'filesystem' && content.fsType === 'btrfs') return 'BTRFS';
  if (mountPoint === '/') return 'OS';
  if (mountPoint === '/boot' || mountPoint === '/boot/efi') return 'BOOT';
  return 'NORMAL';
}

function fsName(c: Content): string {
  if (c.kind === 'filesystem') return c.fsType;
  if (c.kind === 'swap') return 'swap';
  if (c.kind === 'lvm-pv') return 'LVM2_member';
  return '';
}

const mountOf = (c: Content) => (c.kind === 'filesystem' ? c.mountPoint : '');
const usedOf = (c: Content) => (c.kind === 'filesystem' ? c.usedBytes : 0);
const uuidOf = (c: Content) => (c.kind === 'none' ? '' : c.uuid);
const labelOf = (c: Content) => (c.kind === 'filesystem' || c.kind === 'swap' ? c.label : '');

/** The target_server of a task that lays out `layout` (disk i becomes "Disk i"; disk_id names a disk not called disk<i>). */
export function targetServerFromLayout(layout: Layout, name: string): TargetServer {
  const pvName = (p: Partition) => p.sourceDevice || p.id;
  const disks = layout.disks.map((d, i) => {
    const mounts = d.partitions.map((p) => mountOf(p.content));
    return {
      name: `Disk ${i}`,
      ...(d.name !== `disk${i}` ? { disk_id: d.name } : {}),
      device_use: mounts.includes('/') ? ('OS' as const) : mounts.includes('/boot') ? ('BOOT' as const) : ('NORMAL' as const),
      size: d.sizeBytes,
      used_size: d.partitions.reduce((a, p) => a + usedOf(p.content), 0),
      partition_style: d.table === 'gpt' ? ('GPT' as const) : ('MBR' as const),
      table_id: d.tableId,
      physical_volumes: d.partitions.map(
        (p): TargetPv => ({
          index: p.number,
          name: pvName(p),
          size: p.sizeBytes,
          used_size: usedOf(p.content),
          file_system: fsName(p.content),
          mount_point: mountOf(p.content),
          uuid: uuidOf(p.content),
          device_use: useOf(mountOf(p.content), p.content),
          inode_size: 0,
          partition_type: p.type,
          partition_name: p.name,
          partition_uuid: p.partUuid,
          flags: p.attrs,
          bootable: p.bootable,
          logical: p.logical,
          ...(p.startBytes !== undefined ? { start: p.startBytes } : {}),
          label: labelOf(p.content),
        }),
      ),
    };
  });
  const partitions = layout.disks.flatMap((d) => d.partitions);
  const volume_groups = layout.volumeGroups.map((vg) => {
    const pvs = partitions.filter((p) => p.content.kind === 'lvm-pv' && p.content.vg === vg.name);
    const size = pvs.reduce((a, p) => a + p.sizeBytes, 0);
    const lvBytes = vg.logicalVolumes.reduce((a, lv) => a + lv.sizeBytes, 0);
    return {
      name: vg.name,
      components: pvs.map(pvName).join(','),
      size,
      free_size: Math.max(0, size - lvBytes),
      uuid: vg.uuid,
      extent_size: vg.extentBytes,
      logical_volumes: vg.logicalVolumes.map((lv) => ({
        name: lv.name,
        size: lv.sizeBytes,
        used_size: usedOf(lv.content),
        free_size: Math.max(0, lv.sizeBytes - usedOf(lv.content)),
        file_system: fsName(lv.content),
        inode_size: 0,
        mount_point: mountOf(lv.content),
        uuid: uuidOf(lv.content),
        label: labelOf(lv.content),
      })),
    };
  });
  const btrfs_list = partitions.flatMap((p) => {
    const c = p.content;
    if (c.kind !== 'filesystem' || c.fsType !== 'btrfs') return [];
    const def = c.subvolumes.find((s) => s.path === c.defaultSubvolume);
    return [
      {
        name: c.label || c.uuid,
        label: c.label,
        uuid: c.uuid,
        device: pvName(p),
        size: p.sizeBytes,
        nodesize: 16_384,
        sectorsize: 4096,
        data_profile: '',
        system_profile: '',
        metadata_profile: '',
        global_reserve1: '',
        g_vol_used_size: c.usedBytes,
        default_subvol_id: '',
        default_subvol_name: c.defaultSubvolume,
        default_subvol_mountpath: def ? def.mountPoint : c.mountPoint,
        subvolume: c.subvolumes.map((s) => ({
          uuid: '',
          is_snapshot: String(s.readOnlyOnSource),
          subvol_id: '',
          parent_id: '',
          subvol_name: s.path,
          subvol_mount_path: s.mountPoint,
        })),
      },
    ];
  });
  return { name, vm_id: '', disks, volume_groups, btrfs_list };
}

const has = <T>(v: T | null | undefined): v is T => v !== undefined && v !== null;

function contentFrom(source: Content, pv: { file_system?: string | null; mount_point?: string | null; uuid?: string | null; label?: string | null; used_size?: number | null }, what: string): Content {
  const fs = pv.file_system ?? '';
  if (fs === '' || fs === fsName(source)) {
    if (source.kind === 'filesystem') {
      return {
        ...source,
        mountPoint: pv.mount_point ?? source.mountPoint,
        uuid: pv.uuid || source.uuid,
        label: pv.label ?? source.label,
        usedBytes: has(pv.used_size) && pv.used_size > 0 ? pv.used_size : source.usedBytes,
      };
    }
    if (source.kind === 'swap') return { ...source, uuid: pv.uuid || source.uuid, label: pv.label ?? source.label };
    return source;
  }
  if (!(FILE_SYSTEMS as readonly string[]).includes(fs)) {
    throw new FerryError('FERRY_FS_UNSUPPORTED', `target_server ${what}: file system ${JSON.stringify(fs)} is not one ferry creates (${FILE_SYSTEMS.join(', ')})`);
  }
  if (fs === 'swap') return { kind: 'swap', uuid: pv.uuid ?? '', label: pv.label ?? '' };
  return {
    kind: 'filesystem',
    fsType: fs as Exclude<FileSystemType, 'swap'>,
    uuid: pv.uuid ?? '',
    label: pv.label ?? '',
    mountPoint: pv.mount_point ?? '',
    usedBytes: pv.used_size ?? 0,
    subvolumes: [],
    defaultSubvolume: '',
  };
}

/** A new size from `adjust_size` (else `size`), in whole sectors; undefined when neither says one. */
function sizeFrom(pv: { adjust_size?: number | null; size?: number | null }): number | undefined {
  const s = has(pv.adjust_size) && pv.adjust_size > 0 ? pv.adjust_size : pv.size;
  return has(s) && s > 0 ? Math.floor(s / SECTOR) * SECTOR : undefined;
}

/**
 * The layout a target_server asks for, on top of the source's: disk i of the
 * document is source disk i (named by its disk_id, else disk<i>); a physical
 * volume is matched to the source partition of the same index (partition
 * number), else of the same name (device); one with `need_migration: false`
 * is left out, `adjust_size` (else `size`) sizes it; a source partition the
 * document does not list is kept as it is (a BIOS boot partition an inventory
 * leaves out must not vanish). LVs likewise; btrfs_list sets subvolumes.
 */
export function layoutFromTargetServer(ts: TargetServer, sourceLayout: Layout): Layout {
  if (ts.disks.length > sourceLayout.disks.length) {
    throw new FerryError(
      'FERRY_LAYOUT_INVALID',
      `target_server lists ${ts.disks.length} disks, the source has ${sourceLayout.disks.length}: a target disk needs a source disk to copy from`,
    );
  }
  let changedGeometry = false;
  const disks: Disk[] = ts.disks.map((td, i) => {
    const src = sourceLayout.disks[i]!;
    const style = td.partition_style;
    if (style && (style === 'GPT') !== (src.table === 'gpt')) {
      throw new FerryError('FERRY_LAYOUT_INVALID', `target_server ${td.name}: partition_style ${style}, the source disk ${src.name} is ${src.table === 'gpt' ? 'GPT' : 'MBR'} (ferry keeps the source's table style)`);
    }
    const partitions: Partition[] = [];
    for (const sp of src.partitions) {
      const pv = td.physical_volumes.find((x) => x.index === sp.number) ?? td.physical_volumes.find((x) => has(x.name) && x.name !== '' && x.name === sp.sourceDevice);
      if (!pv) {
        partitions.push(structuredClone(sp));
        continue;
      }
      if (pv.need_migration === false) {
        changedGeometry = true;
        continue;
      }
      const what = `${td.name} partition ${sp.number}`;
      const size = sizeFrom(pv) ?? sp.sizeBytes;
      if (size !== sp.sizeBytes) changedGeometry = true;
      partitions.push({
        ...structuredClone(sp),
        sizeBytes: size,
        sourceSizeBytes: sp.sourceSizeBytes ?? sp.sizeBytes,
        type: pv.partition_type || sp.type,
        name: pv.partition_name ?? sp.name,
        partUuid: pv.partition_uuid ?? sp.partUuid,
        attrs: pv.flags ?? sp.attrs,
        bootable: pv.bootable ?? sp.bootable,
        content: contentFrom(sp.content, pv, what),
      });
    }
    // An extended partition whose logical partitions were all left out goes too; the others renumber 5, 6, ….
    const logicals = partitions.filter((p) => p.logical);
    const kept = partitions.filter((p) => !(src.table === 'dos' && isExtended(p) && logicals.length === 0));
    let n = 5;
    for (const p of kept) if (p.logical) p.number = n++;
    return { ...structuredClone(src), name: td.disk_id || `disk${i}`, partitions: kept };
  });
  if (changedGeometry) for (const d of disks) for (const p of d.partitions) delete p.startBytes;

  // Btrfs: subvolumes and the default from btrfs_list, matched by UUID, else by device.
  for (const fs of ts.btrfs_list ?? []) {
    const entry = fs as Record<string, unknown>;
    const p = disks
      .flatMap((d) => d.partitions)
      .find((x) => x.content.kind === 'filesystem' && x.content.fsType === 'btrfs' && ((entry.uuid && x.content.uuid === entry.uuid) || x.sourceDevice === entry.device));
    if (!p || p.content.kind !== 'filesystem') continue;
    const subs = (entry.subvolume ?? entry.subvolumn) as { subvol_name?: string; is_snapshot?: string; subvol_mount_path?: string }[] | undefined;
    if (Array.isArray(subs)) {
      p.content.subvolumes = subs
        .filter((s) => typeof s.subvol_name === 'string' && s.subvol_name !== '')
        .map((s) => ({ path: s.subvol_name!, readOnlyOnSource: s.is_snapshot === 'true', mountPoint: s.subvol_mount_path ?? '' }));
    }
    if (typeof entry.default_subvol_name === 'string') p.content.defaultSubvolume = entry.default_subvol_name === 'FS_TREE' ? '' : entry.default_subvol_name;
  }

  // Volume groups: those whose PVs are still laid out; LVs by name.
  const tsVgs = ts.volume_groups ?? ts.volume_group_s ?? [];
  const pvVgs = new Set(disks.flatMap((d) => d.partitions).flatMap((p) => (p.content.kind === 'lvm-pv' ? [p.content.vg] : [])));
  const volumeGroups = sourceLayout.volumeGroups
    .filter((vg) => pvVgs.has(vg.name))
    .map((vg) => {
      const tvg = tsVgs.find((v) => v.name === vg.name);
      const logicalVolumes = vg.logicalVolumes.flatMap((lv) => {
        const tlv = tvg?.logical_volumes?.find((l) => l.name === lv.name);
        if (!tlv) return [structuredClone(lv)];
        if (tlv.need_migration === false) return [];
        return [
          {
            ...structuredClone(lv),
            sizeBytes: sizeFrom(tlv) ?? lv.sizeBytes,
            sourceSizeBytes: lv.sourceSizeBytes ?? lv.sizeBytes,
            content: contentFrom(lv.content, tlv, `logical volume ${vg.name}/${lv.name}`),
          },
        ];
      });
      return { ...structuredClone(vg), logicalVolumes };
    });
  return { version: LAYOUT_VERSION, disks, volumeGroups };
}
