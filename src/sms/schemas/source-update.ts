// PUT /v3/sources/{source_id} (section 4.1.5, tables 4-42 to 4-46): rename a
// source, move it to another migration project, or choose which disks and
// volumes to migrate and resize. The response is a bare string (table 4-47).

import { z } from 'zod';
import { long, list, str } from './common.js';

/** Table 4-44. */
export const putVolumeSchema = z.object({
  id: str().optional(),
  need_migration: z.boolean().optional(),
  adjust_size: long().optional(),
});

/** Table 4-43. */
export const putDiskSchema = z.object({
  need_migration: z.boolean().optional(),
  id: str(),
  adjust_size: long(),
  physical_volumes: list(putVolumeSchema).optional(),
});

/** Table 4-46. */
export const putLogicalVolumeSchema = z.object({
  id: str(),
  need_migration: z.boolean().optional(),
  adjust_size: long().optional(),
});

/** Table 4-45. */
export const putVolumeGroupSchema = z.object({
  logical_volumes: list(putLogicalVolumeSchema).optional(),
  id: str(),
  need_migration: z.boolean().optional(),
  adjust_size: long().optional(),
});

/** Table 4-42 (the PDF breaks `volume_group_s`; that is the documented key). */
export const sourceUpdateSchema = z.object({
  name: str().optional(),
  migprojectid: str().optional(),
  disks: list(putDiskSchema).optional(),
  volume_group_s: list(putVolumeGroupSchema).optional(),
});

export type SourceUpdate = z.infer<typeof sourceUpdateSchema>;
export type PutDisk = z.infer<typeof putDiskSchema>;
