// Lowering the CPU and I/O priority of this whole process on Linux. Both
// nice values (setpriority) and I/O priorities (ioprio_set) are per thread
// here: setting them for the pid changes the main thread only, while file
// reads run on libuv's pool threads and V8 has its own. So every thread in
// /proc/self/task gets them; threads created later inherit from their
// creator. ioprio_set is not reachable from Node: ionice(1) does it.

import { readdir } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { exec } from './exec.js';
import type { ProcessPriority } from './process-priority-settings.js';

async function threadIds(): Promise<number[]> {
  try {
    return (await readdir('/proc/self/task')).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [process.pid];
  }
}

/** Returns what could not be applied (empty when everything was). */
export async function applyLinuxPriority(p: ProcessPriority): Promise<string[]> {
  const problems: string[] = [];
  const tids = await threadIds();
  if (p.cpu !== undefined) {
    for (const tid of tids) {
      try {
        setPriority(tid, p.cpu);
      } catch (e) {
        // A thread that ended between readdir and now is no loss.
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH' && !/ESRCH|no such process/i.test((e as Error).message)) {
          problems.push(`nice ${p.cpu} for thread ${tid}: ${(e as Error).message}`);
        }
      }
    }
  }
  if (p.ioClass !== undefined) {
    const cls = p.ioClass === 'idle' ? ['-c', '3'] : ['-c', '2', '-n', String(p.ioLevel ?? 7)];
    try {
      await exec('ionice', [...cls, '-p', ...tids.map(String)], { timeoutMs: 5000 });
    } catch (e) {
      problems.push(`ionice ${cls.join(' ')}: ${(e as Error).message}`);
    }
  }
  return problems;
}
