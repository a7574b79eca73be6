// The read-ahead is the process's, shared by the streams reading ahead at
// once: a full pass alone reads up to 128 small files ahead of its stream, and
// two or more passes at once (a whole-server run's volumes) keep 64 each, as a
// stream always did before (issue 14: 128 a stream took the whole-server
// agent's peak RSS over 200 MB). Counted with the producer's beforeRead hook,
// at the moment each stream's first slice comes out; no timing involved.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TarProducer } from '../../../../src/replication/file/tar-producer.js';

let base = '';
let src = '';

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'ferry-read-ahead-'));
  src = join(base, 'src');
  // 300 files of a few bytes in one directory: far more than a read-ahead, far less than its bytes.
  mkdirSync(src);
  for (let f = 0; f < 300; f++) writeFileSync(join(src, `f${String(f).padStart(3, '0')}`), `file ${f}\n`);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A full pass over `src` whose reads are counted; slices of 512 bytes, so the first leaves after the first file. */
function producer(n: number): { p: TarProducer; reads: () => number } {
  let reads = 0;
  const p = new TarProducer({
    root: src,
    manifest: join(base, `manifest-${n}`),
    full: true,
    walk: { threads: 0 },
    smallFileThreads: 0,
    sliceBytes: 512,
    internals: { beforeRead: () => void reads++ },
  });
  return { p, reads: () => reads };
}

/**
 * Small files read (or being read) ahead when the stream's first slice comes out; the stream is left open.
 * The read-ahead counts entries, and the first is the tree's root directory: 128 entries are 127 files.
 */
async function readsAtFirstSlice(s: ReturnType<typeof producer>): Promise<{ reads: number; stream: AsyncGenerator<Buffer> }> {
  const stream = s.p.stream();
  const first = await stream.next();
  expect(first.done).toBe(false);
  return { reads: s.reads(), stream };
}

describe('tar producer: one read-ahead for the process', () => {
  it('reads 128 files ahead alone, 64 while another stream reads ahead, and 128 again once that one has ended', async () => {
    const alone = await readsAtFirstSlice(producer(1));
    expect(alone.reads).toBe(128 - 1);
    await alone.stream.return(undefined);

    // A second stream, suspended after its first slice, still holds its share.
    const other = await readsAtFirstSlice(producer(2));
    const shared = await readsAtFirstSlice(producer(3));
    expect(shared.reads).toBe(64 - 1);
    await shared.stream.return(undefined);
    await other.stream.return(undefined);

    // A stream that ran to its end gives its share back too.
    const done = producer(4);
    let slices = 0;
    for await (const _ of done.p.stream()) slices++;
    expect(slices).toBeGreaterThan(1);
    expect(done.reads()).toBe(300);
    const again = await readsAtFirstSlice(producer(5));
    expect(again.reads).toBe(128 - 1);
    await again.stream.return(undefined);
  });

  it("recomputes a stream's share at each refill: one that started alone refills to 64 once another reads ahead", async () => {
    const first = producer(9);
    const a = await readsAtFirstSlice(first);
    expect(a.reads).toBe(128 - 1);
    // Another stream starts reading ahead while the first holds 64 entries it has not streamed yet.
    const other = await readsAtFirstSlice(producer(10));
    // The first stream's next refill: to its new share of 64 (32 more files), not to 128 (64 more).
    let reads = first.reads();
    while (reads === 128 - 1) {
      const n = await a.stream.next();
      expect(n.done).toBe(false);
      reads = first.reads();
    }
    expect(reads).toBe(128 - 1 + 32);
    await a.stream.return(undefined);
    await other.stream.return(undefined);
  });

  it('takes back the share of a stream left suspended without return() once its pass is abandoned', async () => {
    const dropped = producer(6);
    await readsAtFirstSlice(dropped); // its stream is never resumed nor closed
    const beside = await readsAtFirstSlice(producer(7));
    expect(beside.reads).toBe(64 - 1);
    await beside.stream.return(undefined);
    // What a pass does when it fails (pass.ts): the stream's share goes back with its workers.
    dropped.p.abandonManifest();
    const alone = await readsAtFirstSlice(producer(8));
    expect(alone.reads).toBe(128 - 1);
    await alone.stream.return(undefined);
  });
});
