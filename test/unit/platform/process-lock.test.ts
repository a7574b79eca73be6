// The data-directory lock: held by the open file description, so a second
// acquisition is refused even from the same process and names the holder's
// PID; released, it can be taken again; the file's PID alone means nothing
// (a live process named there does not hold the lock).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireProcessLock, isLockHeld, type ProcessLock } from '../../../src/platform/process-lock.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('process lock', () => {
  it('is exclusive, names its holder, and is free again once released', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-lock-'));
    const path = join(dir, 'x.lock');
    const first = await acquireProcessLock(path);
    expect(isLockHeld(first)).toBe(false);
    expect((first as ProcessLock).kind).toBe(process.platform === 'win32' ? 'pidfile' : 'flock');
    expect(readFileSync(path, 'utf8').trim()).toBe(String(process.pid));
    if (process.platform !== 'win32') {
      // Same process, another open file description: flock(2) says no.
      expect(await acquireProcessLock(path)).toEqual({ held: true, pid: process.pid });
    }
    await (first as ProcessLock).release();
    const again = await acquireProcessLock(path);
    expect(isLockHeld(again)).toBe(false);
    await (again as ProcessLock).release();
  });

  it('is not fooled by a live PID in a lock file nobody holds', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-lock-'));
    const path = join(dir, 'x.lock');
    writeFileSync(path, '1\n'); // init on Linux: alive, and not us
    const lock = await acquireProcessLock(path);
    expect(isLockHeld(lock)).toBe(false);
    expect(readFileSync(path, 'utf8').trim()).toBe(String(process.pid));
    await (lock as ProcessLock).release();
  });
});
