// The block engine's source reader: large sequential reads into a bounded
// set of reusable buffers, made only when the ones made so far are all in use.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FixedBufferSet, READ_AHEAD, readVolume, type SourceRead } from '../../../src/replication/block/source-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-source-reader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('FixedBufferSet', () => {
  it('makes buffers on demand, reuses a given-back one, and waits at its bound', async () => {
    const set = new FixedBufferSet(2, 1024);
    expect(set.allocated).toBe(0);
    const a = await set.take();
    set.give(a);
    expect(await set.take()).toBe(a);
    expect(set.allocated).toBe(1);
    const b = await set.take();
    expect(set.allocated).toBe(2);
    let third: Buffer | undefined;
    const waiting = set.take().then((x) => (third = x));
    await new Promise((r) => setImmediate(r));
    expect(third).toBeUndefined();
    set.give(b);
    await waiting;
    expect(third).toBe(b);
    expect(set.allocated).toBe(2);
  });
});

describe('readVolume', () => {
  const READ = 64 * 1024;
  const data = randomBytes(10 * READ + 1000);
  const file = join(dir, 'volume.img');
  writeFileSync(file, data);

  it('reads the volume in order from the resume point, and a consumer that keeps up needs only the reads ahead', async () => {
    const set = new FixedBufferSet(8, READ);
    const seen: Buffer[] = [];
    for await (const r of readVolume(file, 2 * READ, data.length, set, READ)) {
      expect(r.offset).toBe(2 * READ + seen.reduce((n, b) => n + b.length, 0));
      seen.push(Buffer.from(r.data));
      r.release();
    }
    expect(Buffer.concat(seen).equals(data.subarray(2 * READ))).toBe(true);
    expect(set.allocated).toBeLessThanOrEqual(READ_AHEAD + 1);
  });

  it('a consumer that holds its reads makes the set grow to its bound and no further', async () => {
    const set = new FixedBufferSet(4, READ);
    const held: SourceRead[] = [];
    const reads = readVolume(file, 0, data.length, set, READ);
    for (let i = 0; i < 4 - READ_AHEAD; i++) held.push((await reads.next()).value as SourceRead);
    await new Promise((r) => setTimeout(r, 20));
    expect(set.allocated).toBe(4);
    for (const r of held.splice(0)) r.release();
    let n = 4 - READ_AHEAD;
    for await (const r of reads) {
      n += 1;
      r.release();
    }
    expect(n).toBe(11);
    expect(set.allocated).toBe(4);
  });

  it('a source shorter than it claims is an SMS.0805 error, and the read buffers go back', async () => {
    const set = new FixedBufferSet(4, READ);
    const run = async () => {
      for await (const r of readVolume(file, 0, data.length + 3 * READ, set, READ)) r.release();
    };
    await expect(run()).rejects.toMatchObject({ code: 'SMS.0805' });
  });
});
