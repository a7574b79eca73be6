// A delta's stream bytes do not wait for the end of the walk: once they have
// waited DELTA_HOLD_MS in a partial slice while the walk passes unchanged
// entries, the slice leaves, so that the receiver replaces the changed files
// while the agent still walks (issue 14: the agent used to sit idle at the
// end of a usr delta while the receiver replaced the files of its last
// slice). The clock is the test's: no timing is asserted.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DELTA_HOLD_MS, TarProducer } from '../../../../src/replication/file/tar-producer.js';
import { ZERO_BLOCKS } from '../../../../src/protocol/tar-format.js';

/** A tree of 10 directories of 20 small files, its first pass done (the manifest committed). */
async function treeAfterFullPass(): Promise<{ base: string; src: string; manifest: string }> {
  const base = mkdtempSync(join(tmpdir(), 'ferry-hold-'));
  const src = join(base, 'src');
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 20; f++) writeFileSync(join(src, `d${d}`, `f${String(f).padStart(2, '0')}`), `file ${d}/${f}\n`);
  }
  const manifest = join(base, 'manifest');
  const full = new TarProducer({ root: src, manifest, full: true, walk: { threads: 0 }, smallFileThreads: 0 });
  for await (const _ of full.stream()) void _;
  full.commitManifest();
  return { base, src, manifest };
}

/** The slices of a delta pass over `src` (copied: the producer reuses its slices). */
async function deltaSlices(src: string, manifest: string): Promise<Buffer[]> {
  const p = new TarProducer({ root: src, manifest, walk: { threads: 0 }, smallFileThreads: 0 });
  const out: Buffer[] = [];
  for await (const s of p.stream()) out.push(Buffer.from(s));
  return out;
}

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('tar producer: a delta sends what it has while it walks', () => {
  it('lets a changed file leave in a slice of its own once the walk has passed unchanged entries for DELTA_HOLD_MS', async () => {
    const { base, src, manifest } = await treeAfterFullPass();
    dirs.push(base);
    // The first file in walk order changes; nine directories of unchanged files follow it.
    appendFileSync(join(src, 'd0', 'f00'), 'changed early in the walk\n');
    let now = 1_000;
    vi.spyOn(performance, 'now').mockImplementation(() => (now += DELTA_HOLD_MS / 2));
    const slices = await deltaSlices(src, manifest);
    expect(slices.length).toBeGreaterThanOrEqual(2);
    // The changed file's bytes went out before the walk ended: its slice does not end the archive.
    expect(slices[0]!.includes('changed early in the walk')).toBe(true);
    expect(slices[0]!.subarray(-ZERO_BLOCKS.length).equals(ZERO_BLOCKS)).toBe(false);
    expect(slices[slices.length - 1]!.subarray(-ZERO_BLOCKS.length).equals(ZERO_BLOCKS)).toBe(true);
  });

  it('keeps the bytes in one slice while the walk passes unchanged entries in less than DELTA_HOLD_MS (and the stream is the same)', async () => {
    const { base, src, manifest } = await treeAfterFullPass();
    dirs.push(base);
    appendFileSync(join(src, 'd0', 'f00'), 'changed early in the walk\n');
    // Both deltas diff against the same manifest: a delta replaces it only through commitManifest, not called here.
    vi.spyOn(performance, 'now').mockReturnValue(1_000);
    const held = await deltaSlices(src, manifest);
    expect(held).toHaveLength(1);
    let now = 1_000;
    vi.spyOn(performance, 'now').mockImplementation(() => (now += DELTA_HOLD_MS / 2));
    const early = await deltaSlices(src, manifest);
    expect(Buffer.concat(early).equals(held[0]!)).toBe(true);
  });
});
