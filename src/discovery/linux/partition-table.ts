// Which partition table a disk carries, read from its first two logical
// blocks: a GPT header ("EFI PART") at LBA1, or an MBR (0x55AA at byte 510
// with plausible entries). A file system written straight onto the disk also
// ends its boot sector in 0x55AA, so the caller passes what blkid saw there.

import type { PartitionTable } from '../model.js';

export function detectPartitionTable(head: Buffer | null, logicalBlockSize: number, wholeDiskFsType = ''): PartitionTable {
  if (head === null) return 'unknown';
  const lbs = logicalBlockSize > 0 ? logicalBlockSize : 512;
  if (head.length >= lbs + 8 && head.toString('latin1', lbs, lbs + 8) === 'EFI PART') return 'gpt';
  if (head.length < 512 || head[510] !== 0x55 || head[511] !== 0xaa) return 'none';
  if (wholeDiskFsType !== '') return 'none';
  for (let i = 0; i < 4; i++) {
    const status = head[446 + i * 16]!;
    if (status !== 0x00 && status !== 0x80) return 'none';
  }
  // A protective MBR without a readable GPT header: a damaged GPT disk.
  for (let i = 0; i < 4; i++) if (head[446 + i * 16 + 4] === 0xee) return 'gpt';
  return 'mbr';
}
