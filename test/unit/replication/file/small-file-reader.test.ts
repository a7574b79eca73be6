// The small-file reader on its worker thread: a batch's files share one
// buffer, and that buffer, once every file of it was copied out (release),
// carries a later batch instead of a fresh allocation (issue 14: a full
// pass left a fresh buffer per batch to the garbage collector). The native
// batch reader (libuv's pool) answers every case as the worker does: the
// same bytes and verdicts, gone files and symlinks in their place as
// vanished, node:fs's words for an error, its buffer reused in place.

import { lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeBatchReader, readOnPool, SmallFileReader, type Batch, type SmallRead } from '../../../../src/replication/file/small-file-reader.js';
import { nativeFs } from '../../../../src/platform/native-fs.js';
import { fromStats } from '../../../../src/replication/file/entry.js';
import { formatEntry } from '../../../../src/replication/file/manifest.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-small-'));
const readers: SmallFileReader[] = [];
afterAll(async () => {
  for (const r of readers) await r.close();
  rmSync(dir, { recursive: true, force: true });
});

/** n small files of different sizes. */
function files(prefix: string, n: number): { path: Buffer; body: string }[] {
  const out = [];
  for (let i = 0; i < n; i++) {
    const p = join(dir, `${prefix}-${String.fromCharCode(97 + i)}`);
    const body = `${prefix} file ${i} `.repeat(i + 1);
    writeFileSync(p, body);
    out.push({ path: Buffer.from(p), body });
  }
  return out;
}

function ok(r: SmallRead): Exclude<SmallRead, 'vanished'> {
  if (r === 'vanished') throw new Error('vanished');
  return r;
}

describe('small-file reader', () => {
  it('answers each request with its own file, and reads a later batch into a released batch buffer', async () => {
    const reader = new SmallFileReader(1);
    readers.push(reader);
    const first = files('one', 8);
    const r1 = (await Promise.all(first.map((f) => reader.read(f.path, f.body.length)))).map(ok);
    r1.forEach((r, i) => expect(r.data.toString()).toBe(first[i]!.body));
    const batchBuffer = r1[0]!.data.buffer;
    expect(r1.every((r) => r.data.buffer === batchBuffer)).toBe(true);
    for (const r of r1) r.release!();

    const second = files('two', 5);
    const r2 = (await Promise.all(second.map((f) => reader.read(f.path, f.body.length)))).map(ok);
    r2.forEach((r, i) => expect(r.data.toString()).toBe(second[i]!.body));
    // The first batch's buffer went to the worker for this batch (a transferred buffer leaves its old handle empty).
    expect(batchBuffer.byteLength).toBe(0);

    // Not released: the next batch gets a buffer of its own, the second batch's bytes stay as they are.
    const third = files('three', 3);
    const r3 = (await Promise.all(third.map((f) => reader.read(f.path, f.body.length)))).map(ok);
    r3.forEach((r, i) => expect(r.data.toString()).toBe(third[i]!.body));
    r2.forEach((r, i) => expect(r.data.toString()).toBe(second[i]!.body));
  });

  it('judges each read against the walk\'s line: changed times or size are "changed", another inode "vanished"', async () => {
    const reader = new SmallFileReader(1);
    readers.push(reader);
    const [same, touched, grown, replaced] = files('judge', 4);
    // The walk's manifest lines, taken before anything changes.
    const line = (p: Buffer) => formatEntry(fromStats(Buffer.from('x'), 'f', lstatSync(p, { bigint: true })));
    const lines = [same, touched, grown, replaced].map((f) => line(f!.path));
    utimesSync(touched!.path, new Date(1_600_000_000_000), new Date(1_600_000_000_000));
    writeFileSync(grown!.path, `${grown!.body}more`);
    writeFileSync(join(dir, 'judge-new'), replaced!.body);
    renameSync(join(dir, 'judge-new'), replaced!.path);
    const [r1, r2, r3, r4] = await Promise.all([same, touched, grown, replaced].map((f, i) => reader.read(f!.path, f!.body.length, lines[i])));
    expect(ok(r1!).changed).toBe(false);
    expect(ok(r1!).data.toString()).toBe(same!.body);
    expect(ok(r2!).changed).toBe(true);
    expect(ok(r3!).changed).toBe(true);
    expect(ok(r3!).data.toString()).toBe(grown!.body);
    expect(r4).toBe('vanished');
  });

  // The module is built by `npm run build` (CI always; its own tests fail without it under FERRY_REQUIRE_PRIVILEGED=1).
  it.runIf(nativeFs() !== null)('native batches: the same answers as the worker and node:fs, and the buffer reused in place', async () => {
    const native = nativeBatchReader(nativeFs()!);
    const [same, touched, grown, replaced, asLink, goneFile, emptyOne] = files('native', 7);
    writeFileSync(emptyOne!.path, '');
    const line = (p: Buffer) => formatEntry(fromStats(Buffer.from('x'), 'f', lstatSync(p, { bigint: true })));
    const lines = [same, touched, grown, replaced, asLink, goneFile, emptyOne].map((f) => line(f!.path));
    utimesSync(touched!.path, new Date(-86_400_000), new Date(-86_400_000)); // before 1970: times as exact text
    writeFileSync(grown!.path, `${grown!.body}more`);
    writeFileSync(join(dir, 'native-new'), replaced!.body);
    renameSync(join(dir, 'native-new'), replaced!.path);
    rmSync(asLink!.path);
    symlinkSync(same!.path, asLink!.path);
    rmSync(goneFile!.path);
    mkdirSync(join(dir, 'native-dir'));
    const sizes = [same, touched, grown, replaced, asLink, goneFile].map((f) => f!.body.length);
    const batch: Batch = {
      paths: [...[same, touched, grown, replaced, asLink, goneFile, emptyOne].map((f) => f!.path.toString('latin1')), join(dir, 'native-dir')],
      sizes: [...sizes, 0, 10],
      lines: [...lines, ''],
    };
    const viaNative = await native(batch);
    const viaPool = await readOnPool(batch);
    const text = (r: (typeof viaNative)[number]) => (r.data ? Buffer.from(r.data, r.at ?? 0, Math.min(r.got!, 1 << 20)).subarray(0, r.got).toString() : undefined);
    expect(viaNative.map((r) => r.status)).toEqual(['ok', 'changed', 'changed', 'vanished', 'vanished', 'vanished', 'ok', 'error']);
    expect(viaNative.map((r) => r.status)).toEqual(viaPool.map((r) => r.status));
    expect(viaNative.map(text)).toEqual(viaPool.map(text));
    expect(text(viaNative[2]!)).toBe(`${grown!.body}m`); // one byte more than walked: it grew
    // A directory opened as a file fails at its read, in node:fs's words.
    expect(viaNative[7]).toMatchObject({ status: 'error', code: 'EISDIR', message: `EISDIR: illegal operation on a directory, read '${join(dir, 'native-dir')}'` });
    expect(viaPool[7]).toMatchObject({ status: 'error', code: 'EISDIR' });
    // The batch's buffer is read into where it is (not transferred), and reused when it is large enough.
    const buffer = viaNative[0]!.data!;
    const again = await native({ paths: [same!.path.toString('latin1')], sizes: [same!.body.length], buffer });
    expect(again[0]!.data).toBe(buffer);
    expect(buffer.byteLength).toBeGreaterThan(0);
    // Through the reader: its batches go to the native reads.
    const reader = new SmallFileReader(native);
    readers.push(reader);
    const r = ok(await reader.read(same!.path, same!.body.length, lines[0]));
    expect(r.data.toString()).toBe(same!.body);
    expect(r.changed).toBe(false);
  });
});
