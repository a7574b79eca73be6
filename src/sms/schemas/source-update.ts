// PUT /v3/sources/{source_id} (section 4.1.5, tables 4-42 to 4-46): rename a
// source, move it to another migration project, or choose which disks and
// volumes to migrate and resize. The response is a bare string (table 4-47).
//
// Every object is strict: a key the table does not list is refused (400
// SMS.6011 naming it) rather than dropped, so that an update is never
// answered 200 while part of it was ignored. The volume-group list is
// `volume_group_s` in table 4-42 (a line break in the PDF) and
// `volume_groups` in the official SDK (PutSourceServerBody): both are
// accepted, one at a time.

import { z } from 'zod';
import { long, list, str } from './common.js';

/** Table 4-44. */
export const putVolumeSchema = z.strictObject({
  id: str().optional(),
  need_migration: z.boolean().optional(),
  adjust_size: long().optional(),
});

/** Table 4-43. */
export const putDiskSchema = z.strictObject({
  need_migration: z.boolean().optional(),
  id: str(),
  adjust_size: long(),
  physical_volumes: list(putVolumeSchema).optional(),
});

/** Table 4-46. */
export const putLogicalVolumeSchema = z.strictObject({
  id: str(),
  need_migration: z.boolean().optional(),
  adjust_size: long().optional(),
});

/** Table 4-45. */
export const putVolumeGroupSchema = z.strictObject({
  logical_volumes: list(putLogicalVolumeSchema).optional(),
  id: str(),
  need_migration: z.boolean().optional(),
  adjust_size: long().optional(),
});

/** Table 4-42: `volume_group_s` as the document prints it, `volume_groups` as the SDK sends it. */
export const sourceUpdateSchema = z
  .strictObject({
    name: str().optional(),
    migprojectid: str().optional(),
    disks: list(putDiskSchema).optional(),
    volume_groups: list(putVolumeGroupSchema).optional(),
    volume_group_s: list(putVolumeGroupSchema).optional(),
  })
  .refine((b) => b.volume_groups === undefined || b.volume_group_s === undefined, {
    message: 'give the volume groups once: volume_groups (the SDK spelling) or volume_group_s (the document), not both',
    path: ['volume_group_s'],
  });

/** The volume-group choices of an update, whichever spelling carried them. */
export function updateVolumeGroups(u: SourceUpdate): PutVolumeGroup[] | undefined {
  return u.volume_groups ?? u.volume_group_s;
}

export type SourceUpdate = z.infer<typeof sourceUpdateSchema>;
export type PutDisk = z.infer<typeof putDiskSchema>;
export type PutVolumeGroup = z.infer<typeof putVolumeGroupSchema>;
