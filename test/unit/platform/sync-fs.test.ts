// syncFileSystem: `sync -f` run by one long-lived small helper instead of a
// fork of this process per flush; its failures reported as exec() reports
// them, and the old way taken when the helper cannot be used.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { syncFileSystem, syncHelperPid } from '../../../src/platform/sync-fs.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry sync-fs '));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Direct children of this process, from /proc (the helper is one; its `sync -f` runs are its own children). */
function childrenOfThisProcess(): number[] {
  const tasks = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8');
  return tasks.trim().split(/\s+/).filter(Boolean).map(Number);
}

describe('syncFileSystem', () => {
  it('flushes through one helper process, several at once, a path with spaces and a leading dash included', async () => {
    writeFileSync(join(dir, 'f'), 'data');
    const sub = join(dir, '-odd name');
    writeFileSync(sub, 'x');
    await syncFileSystem(dir);
    const pid = syncHelperPid();
    expect(pid).toBeGreaterThan(0);
    await Promise.all([syncFileSystem(dir), syncFileSystem(sub), syncFileSystem('/'), syncFileSystem(join(dir, 'f'))]);
    // The same helper served them all: this process started nothing else.
    expect(syncHelperPid()).toBe(pid);
    expect(childrenOfThisProcess()).toEqual([pid]);
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('sh');
  });

  it('a path sync cannot open: FERRY_TOOL_FAILED with its status and message, and the helper serves on', async () => {
    const pid = syncHelperPid();
    const missing = join(dir, 'no such file');
    await expect(syncFileSystem(missing)).rejects.toMatchObject({
      code: 'FERRY_TOOL_FAILED',
      exitCode: 1,
      message: expect.stringMatching(new RegExp(`^sync -f ${missing}: exit code 1: .*No such file or directory`)),
    });
    await syncFileSystem(dir);
    expect(syncHelperPid()).toBe(pid);
  });

  it('a path with a newline goes the old way (exec), and so does a flush whose helper died', async () => {
    const nl = join(dir, 'a\nb');
    writeFileSync(nl, 'x');
    const pid = syncHelperPid()!;
    await syncFileSystem(nl);
    expect(syncHelperPid()).toBe(pid);
    await expect(syncFileSystem(join(dir, 'gone\nname'))).rejects.toMatchObject({ code: 'FERRY_TOOL_FAILED' });
    // Killed between two flushes: the next one starts a new helper.
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    await syncFileSystem(dir);
    expect(syncHelperPid()).not.toBe(pid);
  });
});
