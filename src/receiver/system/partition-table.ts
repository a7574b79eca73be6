// Writing a disk's partition table with sfdisk: where each partition goes
// (placePartitions: the source's start where the layout keeps it, else one
// after the other, 1 MiB aligned; MBR logical partitions inside the extended
// one, each after a 1 MiB gap for its EBR), the sfdisk script (label, label-id,
// start/size/type/uuid/name/attrs, bootable), and the write itself followed
// by a re-read of the table. A layout that does not fit is SMS.1315, found
// before anything is written. Owns the table only: no file systems.

import { FerryError } from '../../errors/ferry-error.js';
import { exec } from '../../platform/exec.js';
import type { Disk, Partition } from '../../layout/model.js';
import { partitionDevice, rereadPartitions } from './block-devices.js';

const MiB = 1024 * 1024;
/** GPT's backup table and header at the end of the disk (33 sectors of 512 bytes; more than enough for 4 KiB sectors' 5+1). */
const GPT_TAIL_BYTES = 33 * 512;
const EXTENDED_TYPES = new Set(['5', '05', 'f', '0f', '85']);

export interface Placed {
  partition: Partition;
  startBytes: number;
  sizeBytes: number;
}

export const isExtended = (disk: Disk, p: Partition) => disk.table === 'dos' && EXTENDED_TYPES.has(p.type.toLowerCase());

const align = (n: number) => Math.ceil(n / MiB) * MiB;

/** Places every partition of `disk` on a target of `targetBytes`; SMS.1315 when it does not fit. */
export function placePartitions(disk: Disk, targetBytes: number, sectorBytes: number): Placed[] {
  const round = (n: number) => Math.floor(n / sectorBytes) * sectorBytes;
  const placed: Placed[] = [];
  const sorted = [...disk.partitions].sort((a, b) => a.number - b.number);
  const logicals = sorted.filter((p) => p.logical);
  let cursor = MiB;
  for (const p of sorted.filter((x) => !x.logical)) {
    const start = p.startBytes ?? align(cursor);
    let size = round(p.sizeBytes);
    if (isExtended(disk, p)) {
      let inner = start;
      for (const l of logicals) {
        const ls = l.startBytes ?? align(inner) + MiB;
        const lsize = round(l.sizeBytes);
        placed.push({ partition: l, startBytes: ls, sizeBytes: lsize });
        inner = ls + lsize;
      }
      size = Math.max(size, round(inner - start));
    }
    placed.push({ partition: p, startBytes: start, sizeBytes: size });
    cursor = start + size;
  }
  const end = Math.max(MiB, ...placed.map((x) => x.startBytes + x.sizeBytes));
  const usable = targetBytes - (disk.table === 'gpt' ? GPT_TAIL_BYTES : 0);
  if (end > usable) {
    throw new FerryError('SMS.1315', `Insufficient space on target disk ${disk.name}: its partitions need ${end} bytes (${(end / MiB).toFixed(1)} MiB), the disk has ${usable} usable (${(usable / MiB).toFixed(1)} MiB)`);
  }
  if (logicals.length > 0 && !sorted.some((p) => isExtended(disk, p))) throw new FerryError('FERRY_LAYOUT_INVALID', `disk ${disk.name}: logical partitions without an extended partition`);
  return placed.sort((a, b) => a.partition.number - b.partition.number);
}

const quote = (s: string) => `"${s.replace(/["\\]/g, '_')}"`;

/** The sfdisk script that writes `disk`'s table on `device` as placed. */
export function sfdiskScript(disk: Disk, device: string, placed: Placed[], sectorBytes: number): string {
  const lines = [`label: ${disk.table}`];
  if (disk.tableId) lines.push(`label-id: ${disk.tableId}`);
  lines.push('unit: sectors', '');
  for (const { partition: p, startBytes, sizeBytes } of placed) {
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
