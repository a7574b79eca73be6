// The three ways the whole-server flow gets its layouts, behind one seam:
// discovering the source (discovery/linux/source-layout.ts), planning the
// target from it on the receiver's disks (layout/plan.ts), and mapping a
// given SMS target_server (layout/sms-mapping.ts). whole-server.ts calls
// these only; it never reaches into how they work.

import type { CopyMode, Layout } from '../layout/model.js';
import type { SystemDisk } from '../layout/system-session.js';
import { planTargetLayout } from '../layout/plan.js';
import { layoutFromTargetServer } from '../layout/sms-mapping.js';
import { targetServerByTaskSchema } from '../sms/schemas/task.js';
import { FerryError } from '../errors/ferry-error.js';
import { discoverSourceLayout } from '../discovery/linux/source-layout.js';

export interface LayoutWithNotes {
  layout: Layout;
  /** Decisions a person should know of (a partition shrunk or grown, an LV left out). */
  notes: string[];
}

export async function discoverSource(sourceRoot: string, sourceDisks: string[] | undefined): Promise<LayoutWithNotes> {
  const r = await discoverSourceLayout({ sourceRoot, ...(sourceDisks?.length ? { sourceDisks } : {}) });
  return { layout: r.layout, notes: r.warnings };
}

export function planTarget(source: Layout, disks: SystemDisk[], mode: CopyMode): LayoutWithNotes {
  return { layout: planTargetLayout(source, disks, mode), notes: [] };
}

/** A task's (or a file's) target_server, checked against the document's schema, then laid over the source's own layout. */
export function mapTargetServer(targetServer: unknown, source: Layout): LayoutWithNotes {
  const r = targetServerByTaskSchema.safeParse(targetServer);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new FerryError('FERRY_LAYOUT_INVALID', `target_server: ${issue?.path.join('.') || '(body)'}: ${issue?.message ?? 'invalid'}`);
  }
  return { layout: layoutFromTargetServer(r.data, source), notes: [] };
}
