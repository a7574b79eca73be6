// A task's progress history on the local control plane
// (GET /v3/tasks/{id}/progress-history) and the check the whole-server tests
// make of each subtask's reports in it. Shared by agent-whole-server and
// boot-daemon; reads only.

import { expect } from 'vitest';
import type { LocalCp } from './control-plane.js';
import { until } from './wait.js';

export interface ProgressEntry {
  seq: number;
  subtask_name: string;
  process_trace: string;
  progress: number;
  replicatesize: number;
  totalsize: number;
}

/** Every progress report of the task so far, oldest first. */
export async function progressHistory(cp: LocalCp, taskId: string): Promise<ProgressEntry[]> {
  return ((await cp.call('GET', `/v3/tasks/${taskId}/progress-history`)).body.progress as ProgressEntry[]) ?? [];
}

/** Progress and bytes done never go back within one subtask's reports, and its last report is 100 % of its total. */
export function expectMonotonic(entries: ProgressEntry[], name: string): void {
  const mine = entries.filter((e) => e.subtask_name === name);
  const p = mine.map((e) => e.progress);
  const done = mine.map((e) => e.replicatesize);
  expect(p, name).toEqual([...p].sort((a, b) => a - b));
  expect(done, name).toEqual([...done].sort((a, b) => a - b));
  expect(p.at(-1), name).toBe(100);
  expect(mine.at(-1)!.replicatesize, name).toBe(mine.at(-1)!.totalsize);
}

/** POSTs a task and starts it (both must answer 200); returns its id. */
export async function createAndStartTask(cp: LocalCp, body: object): Promise<string> {
  const created = await cp.call('POST', '/v3/tasks', body);
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  const taskId = created.body.id as string;
  const start = await cp.call('POST', `/v3/tasks/${taskId}/action`, { operation: 'start' });
  expect(start.status, JSON.stringify(start.body)).toBe(200);
  return taskId;
}

/** Waits for MIGRATE_SUCCESS; a MIGRATE_FAIL ends the wait at once with the task's error and the tail of `context()`. */
export async function untilMigrated(cp: LocalCp, taskId: string, ms: number, context: () => string): Promise<void> {
  await until('MIGRATE_SUCCESS', async () => {
    const t = (await cp.call('GET', `/v3/tasks/${taskId}`)).body;
    if (t.state === 'MIGRATE_FAIL') throw new Error(`task failed: ${t.error_json}\n${context().slice(-4000)}`);
    return t.state === 'MIGRATE_SUCCESS';
  }, ms, context);
}
