// The priority a person asks ferry to run at (the agent's `niceness` settings,
// `ferry migrate --nice/--ionice`). Kept apart from the chooser
// (process-priority.ts) so that process-priority-linux.ts imports this file,
// not the module that loads it: no cycle.

export interface ProcessPriority {
  /** nice value 0 (normal) – 19 (lowest). */
  cpu?: number;
  ioClass?: 'best-effort' | 'idle';
  /** 0 (highest) – 7 (lowest) within best-effort. */
  ioLevel?: number;
}
