// A path to one of this process's open descriptors, /proc/<our pid>/fd/<fd>:
// opening it reaches the very file or directory the descriptor holds, even
// if its name was replaced since, and (unlike /proc/self/…) it means the
// same in a tool we run. Linux only.

/** The path of descriptor `fd` of this process; a directory's with a trailing slash, for joining names to. */
export function fdPath(fd: number, dir = false): string {
  return `/proc/${process.pid}/fd/${fd}${dir ? '/' : ''}`;
}
