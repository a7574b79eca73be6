// Whether a process id names a live process (signal 0). EPERM means it lives
// but belongs to someone else. Used to tell a stale lock or state file from a
// running owner.

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
