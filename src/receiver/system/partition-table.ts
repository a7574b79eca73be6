// Writing a disk's partition table with sfdisk: where each partition goes
// is layout/geometry.ts's one placement rule (the one validate.ts checked and
// plan.ts sized with: the source's start where the layout keeps it, else one
// after the other, 1 MiB aligned; MBR logical partitions behind their EBRs),
// the sfdisk script (label, label-id, start/size/type/uuid/name/attrs,
// bootable), and the write itself followed by a re-read of the table. Owns the
// table only: no file systems.

import { exec } from '../../platform/exec.js';
import { isExtended as isExtendedType, placePartitions as place } from '../../layout/geometry.js';
import type { Disk, Partition } from '../../layout/model.js';
import { partitionDevice, rereadPartitions } from './block-devices.js';

export interface Placed {
  partition: Partition;
  startBytes: number;
  sizeBytes: number;
}

export const isExtended = (disk: Disk, p: Partition) => disk.table === 'dos' && isExtendedType(p);

/** Every partition of `disk` where geometry.ts places it (validate.ts has refused a layout whose placement has problems or does not fit). */
export function placePartitions(disk: Disk, sectorBytes: number): Placed[] {
  const at = new Map(place(disk, sectorBytes).partitions.map((x) => [x.id, x]));
  return disk.partitions.map((p) => ({ partition: p, startBytes: at.get(p.id)!.startBytes, sizeBytes: p.sizeBytes }));
}

const quote = (s: string) => `"${s.replace(/["\\]/g, '_')}"`;

/** The sfdisk script that writes `disk`'s table on `device` as placed. */
export function sfdiskScript(disk: Disk, device: string, placed: Placed[], sectorBytes: number): string {
  const lines = [`label: ${disk.table}`];
  if (disk.tableId) lines.push(`label-id: ${disk.tableId}`);
  lines.push('unit: sectors', '');
  // By number: an extended partition (1–4) comes before its logical ones (5+); each line names its partition.
  for (const { partition: p, startBytes, sizeBytes } of [...placed].sort((x, y) => x.partition.number - y.partition.number)) {
    const f = [`start=${startBytes / sectorBytes}`, `size=${sizeBytes / sectorBytes}`, `type=${p.type}`];
    if (disk.table === 'gpt') {
      if (p.partUuid) f.push(`uuid=${p.partUuid}`);
      if (p.name) f.push(`name=${quote(p.name)}`);
      if (p.attrs.length > 0) f.push(`attrs=${quote(p.attrs.join(' '))}`);
    } else if (p.bootable) {
      f.push('bootable');
    }
    lines.push(`${partitionDevice(device, p.number)} : ${f.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Writes the table (wiping old signatures on the disk and in the new partitions), then waits for the partition devices. */
export async function writePartitionTable(disk: Disk, device: string, placed: Placed[], sectorBytes: number): Promise<void> {
  await exec('sfdisk', ['--quiet', '--wipe', 'always', '--wipe-partitions', 'always', '--no-reread', '--no-tell-kernel', device], {
    input: sfdiskScript(disk, device, placed, sectorBytes),
    timeoutMs: 60_000,
  });
  await rereadPartitions(device, placed.map((x) => x.partition.number));
}

/** The table's identifier as the disk now holds it (GPT disk GUID or MBR '0x…'), for recognising the disk later. */
export async function tableIdOf(device: string): Promise<string> {
  const { stdout } = await exec('sfdisk', ['--json', device]);
  const t = (JSON.parse(stdout) as { partitiontable?: { id?: string } }).partitiontable;
  return t?.id ?? '';
}
