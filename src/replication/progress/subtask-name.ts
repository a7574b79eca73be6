// The table 4-172 subtask name of a replication pass, by source OS, level
// (block or file) and pass (full copy = MIGRATE_*, delta = SYNC_*).

import type { SubtaskName } from '../../sms/schemas/progress.js';

export type SourceOs = 'LINUX' | 'WINDOWS';

export function subtaskName(os: SourceOs, kind: 'block' | 'file', pass: 'full' | 'delta'): SubtaskName {
  const verb = pass === 'full' ? 'MIGRATE' : 'SYNC';
  // Table 4-172 has no Windows file-level names: Windows passes report as block.
  if (os === 'WINDOWS') return `${verb}_WINDOWS_BLOCK`;
  return kind === 'file' ? `${verb}_LINUX_FILE` : `${verb}_LINUX_BLOCK`;
}
