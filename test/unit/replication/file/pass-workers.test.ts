// One pool of pass threads serves the walks of several passes (a whole
// server's volumes: migration/whole-server.ts), at the same time and one
// after another: each walk lists its own tree with its own excludes, exactly
// as a walk on the calling thread does; small-file reads and compression run
// on the same threads; once the owner closes the pool, later walks still
// complete (on this thread).

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lz4Decompress } from '../../../../src/protocol/lz4-block.js';
import { PassWorkers } from '../../../../src/replication/file/pass-workers.js';
import { SmallFileReader } from '../../../../src/replication/file/small-file-reader.js';
import { Walker, type WalkOptions } from '../../../../src/replication/file/walker.js';
import { releaseFifo } from '../../../helpers/fifo.js';

async function walk(root: string, options: WalkOptions): Promise<string[]> {
  const w = new Walker(root, options);
  const lines = [w.root];
  try {
    for (let s = await w.next(); s; s = await w.next()) lines.push(...s.listing.lines.slice(s.from, s.to));
  } finally {
    await w.close();
  }
  return lines;
}

let base: string;
const trees: string[] = [];

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'ferry-pass-workers-'));
  // Two trees of different shapes, each with a file the other's excludes would not drop.
  for (const [t, dirs] of [['one', 40], ['two', 25]] as const) {
    const root = join(base, t);
    for (let i = 0; i < dirs; i++) {
      mkdirSync(join(root, `${t}-${i}`, 'sub'), { recursive: true });
      for (let j = 0; j < 4; j++) writeFileSync(join(root, `${t}-${i}`, 'sub', `f${j}.${j % 2 ? 'log' : 'txt'}`), `${t} ${i} ${j}\n`);
    }
    trees.push(root);
  }
});

afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('PassWorkers', () => {
  it('lists two walks of different trees at the same time on one pool, each as its own walk on this thread', async () => {
    const workers = new PassWorkers(2);
    try {
      const [a, b] = [{ patterns: ['*.log'] }, { patterns: ['/two-3'] }];
      const [onA, onB] = await Promise.all([walk(trees[0]!, { ...a, lister: workers.lister }), walk(trees[1]!, { ...b, lister: workers.lister })]);
      expect(onA).toEqual(await walk(trees[0]!, { ...a, threads: 0 }));
      expect(onB).toEqual(await walk(trees[1]!, { ...b, threads: 0 }));
      expect(onA.some((l) => l.includes('.log'))).toBe(false);
      expect(onB.some((l) => l.startsWith('two-3\t'))).toBe(false);
      expect(onB.some((l) => l.startsWith('two-4/sub/f1.log\t'))).toBe(true);
      // A later walk of the first tree, with other excludes, on the same threads.
      expect(await walk(trees[0]!, { lister: workers.lister })).toEqual(await walk(trees[0]!, { threads: 0 }));
    } finally {
      await workers.close();
    }
  });

  it('reads small files and compresses on the same threads, for any number of passes', async () => {
    const workers = new PassWorkers(1);
    try {
      const reader = new SmallFileReader(workers.read);
      const path = Buffer.from(join(trees[1]!, 'two-0', 'sub', 'f0.txt'));
      const r = await reader.read(path, 8);
      expect(r === 'vanished' ? r : Buffer.from(r.data).toString()).toBe('two 0 0\n');
      const src = Buffer.alloc(64 * 1024, 'abc');
      // Each pass has its own compressor (its outputs are its stream sender's to recycle).
      const [x, y] = await Promise.all([workers.lz4().compress(src), workers.lz4().compress(src)]);
      for (const c of [x, y]) expect(lz4Decompress(c, src.length).equals(src)).toBe(true);
    } finally {
      await workers.close();
    }
  });

  it('compresses a frame on the pool thread while it is idle, and at once on this thread while it is busy', { timeout: 20_000 }, async () => {
    const workers = new PassWorkers(1);
    const pool = () => (workers as unknown as { pool: { idle: boolean } }).pool;
    const fifo = join(base, 'busy.fifo');
    execFileSync('mkfifo', [fifo]);
    let released = false;
    // A writer opens the fifo and closes it, which lets the blocked open() go on (retried until the reader has it open).
    const release = async () => {
      if (!released) released = await releaseFifo(fifo);
    };
    const src = Buffer.alloc(256 * 1024, 'frame of text ');
    try {
      // Idle: the frame goes to the thread (it has a task in flight from the call on).
      const first = workers.lz4().compress(src);
      expect(pool().idle).toBe(false);
      expect(lz4Decompress(await first, src.length).equals(src)).toBe(true);
      expect(pool().idle).toBe(true);
      // The one thread blocks in open() of a fifo nobody writes to (as it would on a cold disk).
      const reader = new SmallFileReader(workers.read);
      const blocked = reader.read(Buffer.from(fifo), 8);
      blocked.catch(() => undefined);
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(pool().idle).toBe(false);
      // Sent to the thread, this would wait for the fifo: the test would time out.
      const c = await workers.lz4().compress(src);
      expect(lz4Decompress(c, src.length).equals(src)).toBe(true);
      await release();
      await expect(blocked).rejects.toMatchObject({ code: 'ESPIPE' }); // the thread went on: pread() of a fifo
      expect(pool().idle).toBe(true);
    } finally {
      await release(); // a failure above must not leave the thread blocked (close() would wait for it)
      await workers.close();
      rmSync(fifo, { force: true });
    }
  });

  it('after its owner closed it, a walk still completes (on this thread)', async () => {
    const workers = new PassWorkers(1);
    await workers.close();
    expect(await walk(trees[0]!, { lister: workers.lister })).toEqual(await walk(trees[0]!, { threads: 0 }));
  });
});
