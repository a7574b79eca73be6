// "One process per directory" locks that the kernel releases with the
// process: kill -9, an OOM kill or a crash can never leave a lock behind,
// and a PID written in the file can never be mistaken for the owner (a dead
// process whose PID was reused, a zombie not yet reaped). The PID is still
// written into the file, but only so that a refusal can name the holder.
//
// How: Node has no flock(2) in its standard library. The choices were a
// native addon (fs-ext and os-lock need a compiler at install time and do not
// fit the single-executable bundle), a long-lived `flock FILE cat` holder
// tied to us by a pipe (one more process, and a lock that outlives us by as
// long as the holder takes to notice), or flock(1) from util-linux (busybox
// has it too) in its file-descriptor form. We take the last: we open the
// lock file and hand that descriptor to `flock --nonblock 3`. flock(2) locks
// belong to the open file description, which our descriptor shares with the
// child's copy, so the lock stays held after flock(1) exits, for as long as
// our descriptor is open, and the kernel drops it when we exit. Our
// descriptor is O_CLOEXEC (Node's default), so no other child inherits it.
// The lock file is never removed (removing a flock'ed file lets a second
// process lock a new file of the same name).
//
// Windows (no flock(1)) and a Linux without flock(1) keep the old PID-file
// lock: created exclusively, taken over when the PID it names is not alive.
// This module must not know who locks what: callers word the refusal.

import { spawn } from 'node:child_process';
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { pidAlive } from './pid-alive.js';

export interface ProcessLock {
  /** `flock`: released by the kernel with the process; `pidfile`: the fallback described above. */
  readonly kind: 'flock' | 'pidfile';
  release(): Promise<void>;
}

/** The lock is held by another live process; `pid` is the one its file names, when it names one. */
export interface LockHeld {
  held: true;
  pid?: number;
}

/** Takes the lock at `path` for this process, or says who holds it. */
export async function acquireProcessLock(path: string): Promise<ProcessLock | LockHeld> {
  if (process.platform !== 'win32') {
    const r = await flockLock(path);
    if (r !== 'no-flock') return r;
  }
  return pidFileLock(path);
}

export function isLockHeld(r: ProcessLock | LockHeld): r is LockHeld {
  return (r as LockHeld).held === true;
}

async function flockLock(path: string): Promise<ProcessLock | LockHeld | 'no-flock'> {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  let keep = false;
  try {
    const outcome = await new Promise<'locked' | 'held' | 'no-flock' | Error>((resolve) => {
      // Not platform/exec.ts: it cannot hand a descriptor to the child.
      const child = spawn('flock', ['--nonblock', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
      // --nonblock answers at once; this only guards against a wedged tool.
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('close', () => clearTimeout(timer));
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()).length > 4096 && (stderr = stderr.slice(-4096)));
      child.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ENOENT' ? 'no-flock' : e));
      child.once('close', (code) => {
        if (code === 0) resolve('locked');
        else if (code === 1) resolve('held');
        else resolve(new Error(`flock(1) failed on ${path} (exit ${code}): ${stderr.trim()}`));
      });
    });
    if (outcome instanceof Error) throw outcome;
    if (outcome === 'no-flock') return 'no-flock';
    if (outcome === 'held') return { held: true, pid: pidIn(readFileSync(path, 'utf8')) };
    // Ours now: the PID is information for someone else's refusal message.
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
    keep = true;
    let released = false;
    return {
      kind: 'flock',
      release: async () => {
        if (released) return;
        released = true;
        ftruncateSync(fd, 0);
        closeSync(fd);
      },
    };
  } finally {
    if (!keep) closeSync(fd);
  }
}

async function pidFileLock(path: string): Promise<ProcessLock | LockHeld> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return { kind: 'pidfile', release: () => unlink(path).catch(() => {}) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = pidIn(await readFile(path, 'utf8').catch(() => ''));
    if (pid !== undefined && pid !== process.pid && pidAlive(pid)) return { held: true, pid };
    await unlink(path).catch(() => {});
  }
  return { held: true };
}

function pidIn(text: string): number | undefined {
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
