// PUT /v3/sources/{source_id}/diskinfo (section 4.1.10, tables 4-86 to 4-92):
// the agent replaces the disk, volume-group and Btrfs inventory of a source.
// The response is a bare string (table 4-93).
//
// The item shapes are the registration body's (section 4.1.2), defined once in
// source.ts; this body names the volume-group list `volumegroups` (table 4-86
// and the example agree), unlike registration's `volume_groups`.

import { z } from 'zod';
import { list } from './common.js';
import { btrfsFileSystemSchema, serverDiskSchema, volumeGroupSchema } from './source.js';

export const diskInfoSchema = z.object({
  disks: list(serverDiskSchema).optional(),
  volumegroups: list(volumeGroupSchema).optional(),
  btrfs_list: list(btrfsFileSystemSchema).optional(),
});

export type DiskInfo = z.infer<typeof diskInfoSchema>;
