// The local control plane's store: transactions survive reopening, a torn
// journal tail is dropped, snapshots and journal replay agree.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../../src/sms-server/store.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ferry-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('control-plane store', () => {
  it('keeps committed transactions across a reopen', async () => {
    const dir = tempDir();
    const s = await Store.open(dir);
    await s.transact(() => ({ ops: [{ op: 'put', coll: 'sources', id: 'a', value: { n: 1 } }], result: undefined }));
    await s.transact(() => ({ ops: [{ op: 'put', coll: 'sources', id: 'b', value: { n: 2 } }, { op: 'del', coll: 'sources', id: 'a' }], result: undefined }));
    await s.close();
    const t = await Store.open(dir);
    expect(t.get('sources', 'a')).toBeUndefined();
    expect(t.get('sources', 'b')).toEqual({ n: 2 });
    expect(t.loadReport.records).toBe(2);
    await t.close();
  });

  it('drops a torn tail and keeps appending after the last good record', async () => {
    const dir = tempDir();
    const s = await Store.open(dir);
    await s.transact(() => ({ ops: [{ op: 'put', coll: 'tasks', id: 't1', value: 1 }], result: undefined }));
    await s.close();
    const good = statSync(join(dir, 'journal.log')).size;
    // A record header announcing 100 bytes followed by only 5 of them.
    const torn = Buffer.alloc(13);
    torn.writeUInt32LE(100, 0);
    appendFileSync(join(dir, 'journal.log'), torn);
    const t = await Store.open(dir);
    expect(t.loadReport.droppedBytes).toBe(13);
    expect(statSync(join(dir, 'journal.log')).size).toBe(good);
    await t.transact(() => ({ ops: [{ op: 'put', coll: 'tasks', id: 't2', value: 2 }], result: undefined }));
    await t.close();
    const u = await Store.open(dir);
    expect(u.values('tasks')).toEqual([1, 2]);
    await u.close();
  });

  it('drops a record whose checksum does not match', async () => {
    const dir = tempDir();
    const s = await Store.open(dir);
    await s.transact(() => ({ ops: [{ op: 'put', coll: 'meta', id: 'x', value: 'one' }], result: undefined }));
    await s.transact(() => ({ ops: [{ op: 'put', coll: 'meta', id: 'y', value: 'two' }], result: undefined }));
    await s.close();
    const path = join(dir, 'journal.log');
    const size = statSync(path).size;
    const { openSync, writeSync, closeSync } = await import('node:fs');
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('Z'), 0, 1, size - 3); // flip a byte inside the last record
    closeSync(fd);
    const t = await Store.open(dir);
    expect(t.get('meta', 'x')).toBe('one');
    expect(t.get('meta', 'y')).toBeUndefined();
    await t.close();
  });

  it('compacts into a snapshot and replays only newer records', async () => {
    const dir = tempDir();
    const s = await Store.open(dir, { compactBytes: 2000 });
    for (let i = 0; i < 100; i++) {
      await s.transact(() => ({ ops: [{ op: 'put', coll: 'progress', id: `p${i}`, value: { i, pad: 'x'.repeat(50) } }], result: undefined }));
    }
    await s.close();
    expect(statSync(join(dir, 'snapshot.json')).size).toBeGreaterThan(0);
    expect(statSync(join(dir, 'journal.log')).size).toBeLessThan(2000);
    const t = await Store.open(dir);
    expect(t.values('progress')).toHaveLength(100);
    await t.close();
  });

  it('a journal cut at any byte loads as a prefix of the committed transactions', async () => {
    const dir = tempDir();
    const s = await Store.open(dir);
    const N = 12;
    for (let i = 0; i < N; i++) {
      await s.transact(() => ({
        ops: [
          { op: 'put', coll: 'tasks', id: 'counter', value: i },
          { op: 'put', coll: 'progress', id: `p${i}`, value: { i, pad: 'y'.repeat(i * 7) } },
        ],
        result: undefined,
      }));
    }
    await s.close();
    const full = readFileSync(join(dir, 'journal.log'));
    for (let cut = 0; cut <= full.length; cut += 3) {
      const copy = tempDir();
      writeFileSync(join(copy, 'journal.log'), full.subarray(0, cut));
      const t = await Store.open(copy);
      const k = t.loadReport.records;
      // Both ops of a transaction or neither: the counter and the entries agree.
      expect(t.values('progress')).toHaveLength(k);
      expect(t.get('tasks', 'counter')).toBe(k === 0 ? undefined : k - 1);
      await t.close();
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('a refused transaction writes nothing and does not block the next', async () => {
    const dir = tempDir();
    const s = await Store.open(dir);
    await expect(s.transact(() => {
      throw new Error('refused');
    })).rejects.toThrow('refused');
    await s.transact(() => ({ ops: [{ op: 'put', coll: 'meta', id: 'ok', value: true }], result: undefined }));
    expect(s.get('meta', 'ok')).toBe(true);
    await s.close();
  });
});
