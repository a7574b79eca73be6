// What a system session records of the layout it made, in
// DATA/systems/ID/layout.json (written atomically): 'laying-out' before the
// first write to a disk, 'laid-out' once every table and file system exists,
// with the requested layout's hash, the copy mode, the layout as made, the
// disks used (name → --disk path), and what identifies the result on the
// disks (each table's id, each file system's and swap's UUID as given to
// mkfs or, where that is not certain, as blkid read it; a later check reads
// them all with blkid). A later session with the same hash checks those before it calls the
// disks 'recognised'. Owns that file only.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import { writeFileAtomic } from '../../platform/atomic-file.js';
import { exec } from '../../platform/exec.js';
import { CopyMode, LayoutSchema } from '../../layout/model.js';

export const LayoutStateSchema = z.object({
  state: z.enum(['laying-out', 'laid-out']),
  hash: z.string(),
  mode: CopyMode,
  layout: LayoutSchema,
  disks: z.record(z.string(), z.string()),
  /** Disk name → partition table id as written. */
  tableIds: z.record(z.string(), z.string()).default({}),
  /** Volume id → file system (or swap) UUID: as given to mkfs when it made exactly that (format.ts uuidGiven), else as blkid read it after mkfs ('' when none). */
  uuids: z.record(z.string(), z.string()).default({}),
  notes: z.array(z.string()).default([]),
});
export type LayoutState = z.infer<typeof LayoutStateSchema>;

export const statePath = (systemDir: string) => join(systemDir, 'layout.json');

export async function readLayoutState(systemDir: string): Promise<LayoutState | undefined> {
  let text: string;
  try {
    text = await readFile(statePath(systemDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return LayoutStateSchema.parse(JSON.parse(text));
  } catch (e) {
    throw new FerryError('FERRY_STATE_CORRUPT', `${statePath(systemDir)}: ${errorMessage(e)}`);
  }
}

export async function writeLayoutState(systemDir: string, s: LayoutState): Promise<void> {
  await writeFileAtomic(statePath(systemDir), `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
}

/** The UUID blkid reads on `device` ('' when none). */
export async function blkidUuid(device: string): Promise<string> {
  const r = await exec('blkid', ['-p', '-s', 'UUID', '-o', 'value', device], { okCodes: [0, 2] });
  return r.stdout.trim();
}
