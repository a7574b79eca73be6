// Service rules that depend on time, with a fake clock: a running task can
// be deleted once its agent has been silent for AGENT_TIMEOUT_MS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/sms-server/api-error.js';
import { AGENT_TIMEOUT_MS, ControlPlaneService } from '../../../src/sms-server/service.js';
import { Store } from '../../../src/sms-server/store.js';
import { EXAMPLES } from '../../fixtures/sms-request-examples.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof ApiError) return e.code;
    throw e;
  }
}

describe('control-plane service with a fake clock', () => {
  it('lets a running task be deleted once its agent is disconnected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-svc-'));
    dirs.push(dir);
    const store = await Store.open(join(dir, 'store'));
    let now = Date.UTC(2026, 0, 1);
    const svc = new ControlPlaneService(store, { dataDir: dir, now: () => now });
    const { id: source } = await svc.registerSource(EXAMPLES.register.body);
    const { id: task } = await svc.createTask({ ...EXAMPLES.createTask.body, source_server: { id: source } });
    await svc.taskAction(task, { operation: 'start' });
    expect(await svc.nextCommand(source)).toMatchObject({ command_name: 'START' });
    expect(svc.connected(source)).toBe(true);
    expect(await code(svc.deleteTask(task))).toBe('SMS.7719');
    now += AGENT_TIMEOUT_MS + 1;
    expect(svc.connected(source)).toBe(false);
    expect((svc.listSources(new URLSearchParams()).source_servers[0] as { connected: boolean }).connected).toBe(false);
    expect(await code(svc.deleteTask(task))).toBe('ok');
    // The agent, when it comes back, learns of the deletion.
    expect(await svc.nextCommand(source)).toEqual({ command_name: 'DELETE', command_param: { task_id: task } });
    expect(svc.connected(source)).toBe(true);
    await store.close();
  });
});
