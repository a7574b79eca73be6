// The layout discovery reads from issue 15's two-disk test server
// (test/helpers/system-lab.ts), written out by hand for the pure layout tests.
// disk1's partitions are out of disk order: p1, p3 (the PV), p2 (extended: p5, p6).

import { createHash } from 'node:crypto';
import { FerryError } from '../../../src/errors/ferry-error.js';
import { LayoutSchema, type Layout } from '../../../src/layout/model.js';
import type { SystemDisk } from '../../../src/layout/system-session.js';

export const MIB = 1 << 20;
const GUID = {
  bios: '21686148-6449-6E6F-744E-656564454649',
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  root: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
};

/**
 * A made-up but well-formed UUID for the file system at `mountPoint` (the
 * receiver refuses a malformed one before writing anything): the same text
 * for the same arguments, a different one for each file system of the lab.
 */
export function labUuid(fsType: string, mountPoint: string): string {
  const hex = createHash('sha256').update(`${fsType}:${mountPoint}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function labLayout(): Layout {
  const at = (mib: number) => mib * MIB;
  const p = (disk: string, number: number, startMiB: number, sizeMiB: number, type: string, content: object, extra: object = {}) => ({
    id: `${disk}p${number}`,
    number,
    startBytes: at(startMiB),
    sizeBytes: at(sizeMiB),
    sourceSizeBytes: at(sizeMiB),
    type,
    sourceDevice: `/dev/${disk === 'disk0' ? 'sda' : 'sdb'}${number}`,
    content,
    ...extra,
  });
  const fs = (fsType: string, mountPoint: string, usedMiB: number, extra: object = {}) => ({
    kind: 'filesystem',
    fsType,
    uuid: labUuid(fsType, mountPoint),
    label: mountPoint.replace(/\//g, '') || 'root',
    mountPoint,
    usedBytes: at(usedMiB),
    ...extra,
  });
  return LayoutSchema.parse({
    version: 1,
    disks: [
      {
        name: 'disk0',
        sizeBytes: at(920),
        table: 'gpt',
        tableId: 'B676D2A0-B054-D448-A73E-1742A08E59AE',
        sourceDevice: '/dev/sda',
        partitions: [
          p('disk0', 1, 1, 1, GUID.bios, { kind: 'none' }, { name: 'BIOS boot' }),
          p('disk0', 2, 2, 64, GUID.esp, { kind: 'filesystem', fsType: 'vfat', uuid: '1234-ABCD', label: 'EFI', mountPoint: '/boot/efi', usedBytes: at(64) }, { name: 'EFI System', attrs: ['RequiredPartition'] }),
          p('disk0', 3, 66, 200, GUID.linux, fs('ext4', '/boot', 20), { name: 'boot', attrs: ['LegacyBIOSBootable'] }),
          p('disk0', 4, 266, 320, GUID.root, fs('xfs', '/', 40), { name: 'root' }),
          p(
            'disk0',
            5,
            586,
            300,
            GUID.linux,
            fs('btrfs', '', 10, {
              subvolumes: [
                { path: '@', mountPoint: '/srv' },
                { path: '@home', mountPoint: '/home' },
                { path: '@snap-1', readOnlyOnSource: true },
              ],
              defaultSubvolume: '@',
            }),
            { name: 'data', attrs: ['GUID:60'] },
          ),
          p('disk0', 6, 886, 32, GUID.swap, { kind: 'swap', uuid: labUuid('swap', ''), label: 'swap' }, { name: 'swap' }),
        ],
      },
      {
        name: 'disk1',
        sizeBytes: at(568),
        table: 'dos',
        tableId: '0x5430b57f',
        sourceDevice: '/dev/sdb',
        partitions: [
          p('disk1', 1, 1, 320, '83', fs('xfs', '/data', 30), { bootable: true }),
          p('disk1', 2, 361, 202, '5', { kind: 'none' }),
          p('disk1', 3, 321, 40, '8e', { kind: 'lvm-pv', vg: 'vg0', uuid: 'fJ3ssT-8nBm-gA2r-8eeN-O2ls-Y6HQ-hZN4vG' }),
          p('disk1', 5, 362, 100, '83', fs('ext4', '/var/log', 12), { logical: true }),
          p('disk1', 6, 463, 100, '83', fs('ext4', '/opt', 5), { logical: true }),
        ],
      },
    ],
    volumeGroups: [
      {
        name: 'vg0',
        uuid: 'vg-uuid',
        logicalVolumes: [
          { id: 'vg0-data', name: 'data', sizeBytes: at(8), sourceSizeBytes: at(8), sourceDevice: '/dev/vg0/data', content: { kind: 'none' } },
          { id: 'vg0-logs-1', name: 'logs-1', sizeBytes: at(8), sourceSizeBytes: at(8), sourceDevice: '/dev/vg0/logs-1', content: { kind: 'none' } },
        ],
      },
    ],
  });
}

export const disksOf = (disk0MiB: number, disk1MiB: number): SystemDisk[] => [
  { name: 'disk0', sizeBytes: disk0MiB * MIB, sectorBytes: 512 },
  { name: 'disk1', sizeBytes: disk1MiB * MIB, sectorBytes: 512 },
];

/** The FerryError `fn` throws (a test of a refusal fails when the layout is accepted). */
export function refusal(fn: () => void): FerryError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FerryError) return err;
    throw err;
  }
  throw new Error('expected a refusal, the layout was accepted');
}
