// Reading a live child process from /proc: its resident memory and its open
// descriptors. Used to show that a process's memory stays bounded under an
// attack (a generous bound, never a timing assertion).

import { readFileSync, readdirSync } from 'node:fs';

/** Resident memory (VmRSS) or its peak so far (VmHWM) of a live process, in bytes. */
export function memoryBytes(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** Resident memory of a live process (VmRSS), in MiB. */
export function rssMiB(pid: number): number {
  return memoryBytes(pid) / 1048576;
}

/** Descriptors a live process holds open. */
export function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Samples a process's RSS every 50 ms until stopped; `stop` returns the highest sample (MiB). */
export function sampleRss(pid: number): { stop(): number } {
  let max = rssMiB(pid);
  const timer = setInterval(() => {
    try {
      max = Math.max(max, rssMiB(pid));
    } catch {
      // the process is gone: the caller's own assertions say so
    }
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      try {
        max = Math.max(max, rssMiB(pid));
      } catch {
        // as above
      }
      return max;
    },
  };
}
