// The control plane's store survives kill -9 in the middle of writes: the
// test hammers a real `ferry control-plane` child with registrations and
// progress reports from several concurrent writers, SIGKILLs it while
// requests are in flight, restarts it on the same data directory, and checks
// that every write it acknowledged is there, in order, and nothing else is
// broken. A small compaction threshold makes snapshots happen mid-hammer.
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeDir, startLocalCp, type LocalCp } from '../../helpers/control-plane.js';
import { EXAMPLES } from '../../fixtures/sms-request-examples.js';

const WRITERS = 6;
const ROUNDS = 3;
const ACKS_BEFORE_KILL = 300;

describe('control-plane store under kill -9', () => {
  it('keeps every acknowledged write across repeated SIGKILLs', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ferry-cp-crash-'));
    process.env.FERRY_CP_COMPACT_BYTES = String(64 * 1024);
    let cp: LocalCp | undefined;
    try {
      cp = await startLocalCp({ dataDir, http: true });
      const src = await cp.call('POST', '/v3/sources', EXAMPLES.register.body);
      const task = await cp.call('POST', '/v3/tasks', { ...EXAMPLES.createTask.body, source_server: { id: src.body.id } });
      expect(task.status).toBe(200);
      const taskId = task.body.id as string;
      const ackedSources = new Set<string>([src.body.id]);
      const ackedTraces: string[][] = Array.from({ length: WRITERS }, () => []);
      const counters = Array.from({ length: WRITERS }, () => 0);

      for (let round = 0; round < ROUNDS; round++) {
        let acks = 0;
        let killed = false;
        const current = cp!;
        const writer = async (w: number) => {
          while (!killed) {
            const n = counters[w]!++;
            try {
              if (w === 0) {
                const r = await current.call('POST', '/v3/sources', { ...EXAMPLES.register.body, hostname: `host-${round}-${n}` });
                if (r.status === 200) ackedSources.add(r.body.id);
              } else {
                const trace = `w${w}-${n}`;
                const r = await current.call('PUT', `/v3/tasks/${taskId}/progress`, {
                  subtask_name: 'MIGRATE_LINUX_FILE', progress: n % 101, replicatesize: n, totalsize: 1_000_000, process_trace: trace,
                });
                if (r.status === 200) ackedTraces[w]!.push(trace);
                else throw new Error(`unexpected ${r.status}`);
              }
              acks++;
            } catch (e) {
              if (!killed) throw e;
              return; // the connection died with the server
            }
          }
        };
        const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
        while (acks < ACKS_BEFORE_KILL) await new Promise((r) => setTimeout(r, 5));
        killed = true;
        await current.kill();
        await Promise.allSettled(writers);
        cp = await startLocalCp({ dataDir, http: true });

        // Every acknowledged source is there.
        const list = await cp.call('GET', '/v3/sources', undefined, { query: { limit: 200 } });
        expect(list.status).toBe(200);
        const present = new Set((await allSources(cp)).map((s) => s.id));
        for (const id of ackedSources) expect(present.has(id), `source ${id}`).toBe(true);

        // Every acknowledged progress report is in the history, in each writer's order.
        const h = await cp.call('GET', `/v3/tasks/${taskId}/progress-history`);
        expect(h.status).toBe(200);
        const traces = (h.body.progress as { process_trace: string }[]).map((p) => p.process_trace);
        const seen = new Set(traces);
        for (const list of ackedTraces) for (const t of list) expect(seen.has(t), `progress ${t}`).toBe(true);
        for (let w = 1; w < WRITERS; w++) {
          const mine = traces.filter((t) => t.startsWith(`w${w}-`)).map((t) => Number(t.split('-')[1]));
          expect(mine).toEqual([...mine].sort((a, b) => a - b));
        }
        // The task and its source still agree.
        const t = await cp.call('GET', `/v3/tasks/${taskId}`);
        expect(t.body.source_server.id).toBe(src.body.id);
        expect(t.body.sub_tasks).toEqual([expect.objectContaining({ name: 'MIGRATE_LINUX_FILE' })]);
      }
    } finally {
      delete process.env.FERRY_CP_COMPACT_BYTES;
      await cp?.stop();
      removeDir(dataDir);
    }
  });
});

async function allSources(cp: LocalCp): Promise<{ id: string }[]> {
  const out: { id: string }[] = [];
  for (let offset = 0; ; offset += 200) {
    const r = await cp.call('GET', '/v3/sources', undefined, { query: { limit: 200, offset } });
    out.push(...r.body.source_servers);
    if (out.length >= r.body.count) return out;
  }
}
