// Running at a lower CPU and I/O priority than the production workload:
// the agent's `niceness` settings and `ferry migrate --nice/--ionice`.
// Linux: every thread's nice value and ionice class (process-priority-linux).
// Windows: os.setPriority maps the nice value to a priority class for the
// whole process (> 0: below normal, 19: idle); there is no I/O priority
// knob reachable from Node, so ioClass is ignored there.

import { setPriority } from 'node:os';
import { UsageError } from '../errors/ferry-error.js';
import type { ProcessPriority } from './process-priority-settings.js';

export type { ProcessPriority } from './process-priority-settings.js';

/** Applies `p` to this process; returns what could not be applied. */
export async function applyProcessPriority(p: ProcessPriority): Promise<string[]> {
  if (process.platform === 'linux') {
    const { applyLinuxPriority } = await import('./process-priority-linux.js');
    return applyLinuxPriority(p);
  }
  if (p.cpu === undefined) return [];
  try {
    setPriority(0, p.cpu);
    return [];
  } catch (e) {
    return [`priority ${p.cpu}: ${(e as Error).message}`];
  }
}

/** `--nice N`: 0–19. */
export function parseNice(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n > 19) throw new UsageError(`--nice wants 0–19, got '${s}'`);
  return n;
}

/** `--ionice CLASS[:LEVEL]`: best-effort[:0–7] (or 2[:N]) or idle (or 3). */
export function parseIonice(s: string): Pick<ProcessPriority, 'ioClass' | 'ioLevel'> {
  const m = /^(best-effort|be|2|idle|3)(?::([0-7]))?$/.exec(s);
  if (!m) throw new UsageError(`--ionice wants best-effort[:0-7] or idle, got '${s}'`);
  const ioClass = m[1] === 'idle' || m[1] === '3' ? 'idle' : 'best-effort';
  if (ioClass === 'idle' && m[2] !== undefined) throw new UsageError('--ionice idle takes no level');
  return ioClass === 'idle' ? { ioClass } : { ioClass, ioLevel: m[2] === undefined ? 7 : Number(m[2]) };
}
