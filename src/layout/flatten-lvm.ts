// LVM without device-mapper: a receiver whose kernel cannot activate logical
// volumes (this machine, see DESIGN.md) lays each LV out as a plain partition
// in the place of its volume group's PV partitions, and says so in a note the
// next issue's fstab rewrite follows. Used at file level only (a block copy
// copies PV partitions byte for byte). Pure: returns a new layout.
//
// Placement: the LVs of a VG fill its PV partitions' places in order (the
// first PV's place until the next LV no longer fits in it, then the next
// PV's, possibly on another disk), so a VG spanning several PVs keeps the
// space of all of them. Numbers: GPT — the first LV in a place takes the PV's
// number, the others the next free numbers; MBR — primaries while the disk
// has at most 4, otherwise logical partitions (in a new extended partition in
// the PV's place, or appended to the existing extended one); a PV that was a
// logical partition gives its place in the logical list, renumbered 5, 6, ….

import { MIB, extendedBytesFor, isExtended } from './geometry.js';
import type { Disk, Layout, LogicalVolume, Partition } from './model.js';

const GPT_LINUX_FS = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const GPT_LINUX_SWAP = '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F';

function asPartition(lv: LogicalVolume, disk: Disk, number: number, logical: boolean): Partition {
  const swap = lv.content.kind === 'swap';
  return {
    id: lv.id,
    number,
    sizeBytes: lv.sizeBytes,
    ...(lv.sourceSizeBytes !== undefined ? { sourceSizeBytes: lv.sourceSizeBytes } : {}),
    type: disk.table === 'gpt' ? (swap ? GPT_LINUX_SWAP : GPT_LINUX_FS) : swap ? '82' : '83',
    name: disk.table === 'gpt' ? lv.name.slice(0, 72) : '',
    partUuid: '',
    attrs: [],
    bootable: false,
    logical,
    sourceDevice: lv.sourceDevice,
    content: lv.content,
  };
}

export function flattenLvm(input: Layout): { layout: Layout; notes: string[] } {
  const layout = structuredClone(input);
  const notes: string[] = [];
  for (const vg of layout.volumeGroups) {
    // The VG's PV places, in disk and table order, with the LVs each takes.
    const places: { disk: Disk; pv: Partition; lvs: LogicalVolume[]; room: number }[] = [];
    for (const disk of layout.disks) {
      for (const p of disk.partitions) {
        if (p.content.kind === 'lvm-pv' && p.content.vg === vg.name) places.push({ disk, pv: p, lvs: [], room: p.sizeBytes - MIB });
      }
    }
    if (places.length === 0) continue; // validate.ts reports a VG without a PV
    let at = 0;
    for (const lv of vg.logicalVolumes) {
      while (at < places.length - 1 && places[at]!.room < lv.sizeBytes) at++;
      places[at]!.lvs.push(lv);
      places[at]!.room -= lv.sizeBytes;
    }
    for (const place of places) {
      const made = replacePv(place.disk, place.pv, place.lvs);
      for (const [lv, p] of made) notes.push(`${vg.name}/${lv.name} became partition ${place.disk.name}p${p.number} (no device-mapper on the receiver)`);
    }
  }
  for (const disk of layout.disks) {
    if (disk.partitions.some((p) => p.startBytes !== undefined) && notes.length > 0) for (const p of disk.partitions) delete p.startBytes;
  }
  layout.volumeGroups = [];
  return { layout, notes };
}

function replacePv(disk: Disk, pv: Partition, lvs: LogicalVolume[]): [LogicalVolume, Partition][] {
  const parts = disk.partitions;
  const idx = parts.indexOf(pv);
  const used = new Set(parts.filter((p) => p !== pv).map((p) => p.number));
  const made: [LogicalVolume, Partition][] = [];
  if (disk.table === 'gpt') {
    let next = pv.number;
    const created = lvs.map((lv) => {
      while (used.has(next)) next++;
      used.add(next);
      const p = asPartition(lv, disk, next, false);
      made.push([lv, p]);
      return p;
    });
    parts.splice(idx, 1, ...created);
    return made;
  }
  if (pv.logical) {
    const created = lvs.map((lv) => asPartition(lv, disk, 0, true));
    parts.splice(idx, 1, ...created);
    renumberLogicals(disk);
    return lvs.map((lv, i) => [lv, created[i]!]);
  }
  const primaries = parts.filter((p) => !p.logical && p !== pv).length;
  if (primaries + lvs.length <= 4) {
    const free = [pv.number, 1, 2, 3, 4].filter((n, i, a) => a.indexOf(n) === i && !used.has(n));
    const created = lvs.map((lv, i) => asPartition(lv, disk, free[i]!, false));
    parts.splice(idx, 1, ...created);
    return lvs.map((lv, i) => [lv, created[i]!]);
  }
  const ext = parts.find((p) => !p.logical && isExtended(p));
  const created = lvs.map((lv) => asPartition(lv, disk, 0, true));
  if (!ext) {
    // A new extended partition in the PV's place holds the LVs as logical partitions.
    const container: Partition = {
      id: pv.id,
      number: pv.number,
      sizeBytes: extendedBytesFor(created.map((p) => p.sizeBytes)),
      type: '5',
      name: '',
      partUuid: '',
      attrs: [],
      bootable: false,
      logical: false,
      sourceDevice: '',
      content: { kind: 'none' },
    };
    parts.splice(idx, 1, container, ...created);
  } else {
    parts.splice(idx, 1);
    const lastLogical = parts.reduce((m, p, i) => (p.logical ? i : m), parts.indexOf(ext));
    parts.splice(lastLogical + 1, 0, ...created);
    ext.sizeBytes += extendedBytesFor(created.map((p) => p.sizeBytes));
  }
  renumberLogicals(disk);
  return lvs.map((lv, i) => [lv, created[i]!]);
}

function renumberLogicals(disk: Disk): void {
  let n = 5;
  for (const p of disk.partitions) if (p.logical) p.number = n++;
}
