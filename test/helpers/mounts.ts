// The mounts a test sees, from /proc/self/mountinfo (field 5; the tests'
// paths have no spaces, which mountinfo would escape), and the one order the
// receiver promises for a laid-out tree: it mounts side by side what does not
// sit on something else (receiver/system/mount-plan.ts runMountPlan), so of
// mountinfo's order only "each after the mounts at or above it" holds.

import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** Mount points starting with `dir`, in mountinfo's order (the order they were made). */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
}

/** Fails when a mount comes before a mount at or above its directory (it would have been made inside the wrong file system). */
export function expectParentsFirst(mounted: readonly string[]): void {
  mounted.forEach((m, i) => {
    for (const later of mounted.slice(i + 1)) expect(m.startsWith(`${later}/`), `${m} mounted before ${later}`).toBe(false);
  });
}
