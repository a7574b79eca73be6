// STAND-INS, to be replaced by layout/ once branch layout-pure lands on main:
// layoutHash and isWholeDiskCopy (layout/plan.ts), validateLayout
// (layout/validate.ts), flattenLvm (layout/flatten-lvm.ts). Pure, minimal
// versions of what the receiver needs from them, so that receiver/system/
// works and is tested meanwhile; delete this file when switching.

import { createHash } from 'node:crypto';
import { FerryError } from '../../errors/ferry-error.js';
import type { CopyMode, Disk, Layout, Partition } from '../../layout/model.js';
import type { SystemDisk } from '../../layout/system-session.js';

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

/** sha256 (hex) of the layout's canonical JSON (keys sorted). */
export function layoutHash(layout: Layout): string {
  return createHash('sha256').update(JSON.stringify(canonical(layout))).digest('hex');
}

/** Whole-disk block copy: every partition keeps the source's place (startBytes), on a disk at least the source's size. */
export function isWholeDiskCopy(disk: Disk, targetBytes: number): boolean {
  return targetBytes >= disk.sizeBytes && disk.partitions.every((p) => p.startBytes !== undefined);
}

/** Checks what can be checked without the disks: names given, ids unique, no block-level shrink. */
export function validateLayout(layout: Layout, disks: SystemDisk[], mode: CopyMode): void {
  const given = new Map(disks.map((d) => [d.name, d]));
  const ids = new Set<string>();
  for (const d of layout.disks) {
    const target = given.get(d.name);
    if (!target) throw new FerryError('SMS.0411', `Disk ${d.name} does not exist on this receiver (it was given ${[...given.keys()].join(', ') || 'no --disk'})`);
    if (mode === 'block' && target.sizeBytes < d.sizeBytes) {
      throw new FerryError('SMS.1315', `Insufficient space on target disk ${d.name}: ${target.sizeBytes} bytes, the source disk has ${d.sizeBytes} (block level never shrinks)`);
    }
    const numbers = new Set<number>();
    for (const p of d.partitions) {
      if (numbers.has(p.number)) throw new FerryError('FERRY_LAYOUT_INVALID', `disk ${d.name}: partition number ${p.number} appears twice`);
      numbers.add(p.number);
      if (d.table === 'dos' && (p.logical ? p.number < 5 : p.number > 4)) throw new FerryError('FERRY_LAYOUT_INVALID', `disk ${d.name}: partition ${p.id}: MBR logical partitions are numbered 5 and up, primary ones 1 to 4`);
      if (p.sizeBytes === 0) throw new FerryError('FERRY_LAYOUT_INVALID', `disk ${d.name}: partition ${p.id} has no size`);
    }
    for (const p of d.partitions) checkVolume(p.id, p.content, ids);
  }
  for (const vg of layout.volumeGroups) for (const lv of vg.logicalVolumes) checkVolume(lv.id, lv.content, ids);
}

function checkVolume(id: string, _c: Partition['content'], ids: Set<string>): void {
  if (ids.has(id)) throw new FerryError('FERRY_LAYOUT_INVALID', `volume id ${id} appears twice`);
  ids.add(id);
}

export interface Flattened {
  layout: Layout;
  notes: string[];
  /** Partition id → 'vg/lv' for each logical volume that became a partition. */
  from: Map<string, string>;
}

/**
 * Each logical volume becomes a plain partition on the disk of its volume
 * group's first physical volume: the first takes the PV partition's number,
 * the others the next free numbers (MBR: primary numbers 1–4 only).
 */
export function flattenLvm(layout: Layout): Flattened {
  const notes: string[] = [];
  const from = new Map<string, string>();
  const disks = layout.disks.map((d) => ({ ...d, partitions: [...d.partitions] }));
  for (const vg of layout.volumeGroups) {
    const pvs = disks.flatMap((d) => d.partitions.filter((p) => p.content.kind === 'lvm-pv' && p.content.vg === vg.name).map((p) => ({ d, p })));
    const first = pvs[0];
    if (!first) throw new FerryError('FERRY_LAYOUT_INVALID', `volume group ${vg.name} has no physical volume in the layout`);
    for (const { d, p } of pvs) d.partitions = d.partitions.filter((x) => x !== p);
    const d = first.d;
    const used = new Set(d.partitions.map((p) => p.number));
    let next = first.p.number;
    for (const lv of vg.logicalVolumes) {
      while (used.has(next)) next++;
      if (d.table === 'dos' && next > 4) throw new FerryError('FERRY_LAYOUT_INVALID', `volume group ${vg.name}: no primary partition number left on MBR disk ${d.name} for logical volume ${lv.name}`);
      used.add(next);
      const type = d.table === 'gpt' ? '0FC63DAF-8483-4772-8E79-3D69D8477DE4' : '83';
      d.partitions.push({ id: lv.id, number: next, sizeBytes: lv.sizeBytes, type, name: lv.name, partUuid: '', attrs: [], bootable: false, logical: false, sourceDevice: lv.sourceDevice, content: lv.content });
      from.set(lv.id, `${vg.name}/${lv.name}`);
      notes.push(`${vg.name}/${lv.name} became partition ${d.name} #${next} (${lv.id}): this receiver has no device-mapper`);
    }
    d.partitions.sort((a, b) => a.number - b.number);
  }
  return { layout: { ...layout, disks, volumeGroups: [] }, notes, from };
}
