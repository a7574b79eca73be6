// The block engine's source reader: large sequential reads into a bounded
// set of reusable buffers, made only when the ones made so far are all in use.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BufferReserve, FixedBufferSet, READ_AHEAD, readVolume, type SourceRead } from '../../../src/replication/block/source-reader.js';

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

describe('BufferReserve', () => {
  it("takes a closed set's free buffers, and each one given back after the close, for the next set", async () => {
    const reserve = new BufferReserve(1024, 3, 60_000);
    const first = new FixedBufferSet(4, 1024, reserve);
    const [a, b, c] = [await first.take(), await first.take(), await first.take()];
    first.give(a);
    first.close();
    // Only the free one: b and c are still held (a frame being sent, a read in flight).
    expect(reserve.size).toBe(1);
    first.give(b);
    expect(reserve.size).toBe(2);
    const second = new FixedBufferSet(4, 1024, reserve);
    const got = [await second.take(), await second.take()];
    expect(new Set(got)).toEqual(new Set([a, b]));
    expect(second.allocated).toBe(2);
    expect(reserve.size).toBe(0);
    // Reserve empty: the next is made.
    const made = await second.take();
    expect([a, b, c]).not.toContain(made);
    first.give(c);
    expect(reserve.size).toBe(1);
    reserve.drop();
  });

  it('keeps buffers of its size only, and no more than its bound', () => {
    const reserve = new BufferReserve(1024, 2, 60_000);
    reserve.keep(Buffer.alloc(512));
    expect(reserve.size).toBe(0);
    for (let i = 0; i < 3; i++) reserve.keep(Buffer.alloc(1024));
    expect(reserve.size).toBe(2);
    reserve.drop();
    expect(reserve.size).toBe(0);
  });

  it('lets its buffers go once it has been idle', async () => {
    // Timers run in the order they fall due, so these checks hold however late the loop runs them.
    const reserve = new BufferReserve(1024, 4, 200);
    reserve.keep(Buffer.alloc(1024));
    await new Promise((r) => setTimeout(r, 100));
    reserve.keep(Buffer.alloc(1024));
    // Each buffer kept starts the idle time again: due at 300 ms now, not 200.
    await new Promise((r) => setTimeout(r, 150));
    expect(reserve.size).toBe(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(reserve.size).toBe(0);
  });

  it('a process with buffers kept exits when its work is done (the idle timer holds nothing open)', () => {
    // The built module (npm test builds first), in a process of its own.
    const src = pathToFileURL(fileURLToPath(new URL('../../../dist/replication/block/source-reader.js', import.meta.url))).href;
    const script = `
      const { blockReadReserve, READ_BYTES } = await import(${JSON.stringify(src)});
      blockReadReserve.keep(Buffer.allocUnsafeSlow(READ_BYTES));
      console.log('kept', blockReadReserve.size);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 5_000 });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('kept 1');
  });

  it('a set without a reserve keeps its buffers to itself after the close', async () => {
    const set = new FixedBufferSet(2, 1024);
    const a = await set.take();
    set.close();
    set.give(a);
    expect(await set.take()).toBe(a);
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
