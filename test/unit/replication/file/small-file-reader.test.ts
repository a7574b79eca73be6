// The small-file reader on its worker thread: a batch's files share one
// buffer, and that buffer, once every file of it was copied out (release),
// carries a later batch instead of a fresh allocation (issue 14: a full
// pass left a fresh buffer per batch to the garbage collector). The native
// batch reader (libuv's pool) answers every case as the worker does: the
// same bytes and verdicts, gone files and symlinks in their place as
// vanished, node:fs's words for an error, its buffer reused in place.

import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decimalOfHalves, nanosText, nativeBatchReader, readOnPool, SmallFileReader, type Batch, type SmallRead } from '../../../../src/replication/file/small-file-reader.js';
import { nativeFs } from '../../../../src/platform/native-fs.js';
import { readXattrs, xattrsFromList } from '../../../../src/platform/xattrs-linux.js';
import { setAttributeSync } from '@napi-rs/xattr';
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

/** A manifest line with its device field (the 9th) one more. */
function otherDevice(line: string): string {
  const f = line.split('\t');
  f[8] = String(BigInt(f[8]!) + 1n);
  return f.join('\t');
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

  it('judges each read against the walk\'s line: changed times or size are "changed", another inode or device "vanished"', async () => {
    const reader = new SmallFileReader(1);
    readers.push(reader);
    const [same, touched, grown, replaced, elsewhere] = files('judge', 5);
    // The walk's manifest lines, taken before anything changes.
    const line = (p: Buffer) => formatEntry(fromStats(Buffer.from('x'), 'f', lstatSync(p, { bigint: true })));
    const lines = [same, touched, grown, replaced].map((f) => line(f!.path));
    utimesSync(touched!.path, new Date(1_600_000_000_000), new Date(1_600_000_000_000));
    writeFileSync(grown!.path, `${grown!.body}more`);
    writeFileSync(join(dir, 'judge-new'), replaced!.body);
    renameSync(join(dir, 'judge-new'), replaced!.path);
    const [r1, r2, r3, r4] = await Promise.all([same, touched, grown, replaced].map((f, i) => reader.read(f!.path, f!.body.length, lines[i])));
    // The same inode number, times and size on another device (what a directory swapped for a symlink since the
    // walk could lead to): not the walk's file.
    expect(await reader.read(elsewhere!.path, elsewhere!.body.length, otherDevice(line(elsewhere!.path)))).toBe('vanished');
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
    const [same, touched, grown, replaced, asLink, goneFile, emptyOne, past, asFifo] = files('native', 9);
    writeFileSync(emptyOne!.path, '');
    // Before 1970 and unchanged since the walk: "ok" only if its time is compared as exact text.
    utimesSync(past!.path, new Date(-500), new Date(-500));
    const line = (p: Buffer) => formatEntry(fromStats(Buffer.from('x'), 'f', lstatSync(p, { bigint: true })));
    const all = [same, touched, grown, replaced, asLink, goneFile, emptyOne, past, asFifo];
    const lines = all.map((f) => line(f!.path));
    utimesSync(touched!.path, new Date(1_600_000_000_000), new Date(1_600_000_000_000));
    writeFileSync(grown!.path, `${grown!.body}more`);
    writeFileSync(join(dir, 'native-new'), replaced!.body);
    renameSync(join(dir, 'native-new'), replaced!.path);
    rmSync(asLink!.path);
    symlinkSync(same!.path, asLink!.path);
    rmSync(goneFile!.path);
    // A FIFO put in a file's place: not waited on (no writer ever comes), not read.
    rmSync(asFifo!.path);
    execFileSync('mkfifo', [asFifo!.path.toString()]);
    // A directory in a file's place (native: not a file any more; node:fs fails its read), and a path too long.
    mkdirSync(join(dir, 'native-dir'));
    const tooLong = `${dir}/${'n'.repeat(250)}`.repeat(17);
    const batch: Batch = {
      paths: [...all.map((f) => f!.path.toString('latin1')), join(dir, 'native-dir'), tooLong, same!.path.toString('latin1')],
      sizes: [...all.map((f) => (f === emptyOne ? 0 : f!.body.length)), 10, 1, same!.body.length],
      // The last: `same` as if the walk had listed it on another device.
      lines: [...lines, '', '', otherDevice(lines[0]!)],
    };
    const viaNative = await native(batch);
    const text = (r: (typeof viaNative)[number]) => (r.data ? Buffer.from(r.data, r.at ?? 0, r.got).toString() : undefined);
    expect(viaNative.map((r) => r.status)).toEqual(['ok', 'changed', 'changed', 'vanished', 'vanished', 'vanished', 'ok', 'ok', 'vanished', 'vanished', 'error', 'vanished']);
    // node:fs on the pool agrees, but for the FIFO and the directory, which it fails to read (ESPIPE, EISDIR).
    const viaPool = await readOnPool(batch);
    expect(viaPool.map((r) => r.status)).toEqual(['ok', 'changed', 'changed', 'vanished', 'vanished', 'vanished', 'ok', 'ok', 'error', 'error', 'error', 'vanished']);
    expect([viaPool[8]!.code, viaPool[9]!.code]).toEqual(['ESPIPE', 'EISDIR']);
    const both = [0, 1, 2, 3, 4, 5, 6, 7];
    expect(both.map((i) => text(viaNative[i]!))).toEqual(both.map((i) => text(viaPool[i]!)));
    expect(text(viaNative[2]!)).toBe(`${grown!.body}m`); // one byte more than walked: it grew
    expect(text(viaNative[7]!)).toBe(past!.body);
    // An error in node:fs's very words.
    expect(viaNative[10]).toEqual({ status: 'error', code: 'ENAMETOOLONG', message: `ENAMETOOLONG: name too long, open '${tooLong}'` });
    expect(viaPool[10]).toEqual(viaNative[10]);
    // The batch's buffer is read into where it is (not transferred), and reused when it is large enough.
    const buffer = viaNative[0]!.data!;
    const again = await native({ paths: [same!.path.toString('latin1')], sizes: [same!.body.length], buffer });
    expect(again[0]!.data).toBe(buffer);
    expect(buffer.byteLength).toBeGreaterThan(0);
    // Through the reader: its batches go to the native reads, and a released batch's buffer carries the next.
    const reader = new SmallFileReader(native);
    readers.push(reader);
    const first = ok(await reader.read(same!.path, same!.body.length, lines[0]));
    expect(first.data.toString()).toBe(same!.body);
    expect(first.changed).toBe(false);
    first.release!();
    const second = ok(await reader.read(past!.path, past!.body.length, lines[7]));
    expect(second.data.toString()).toBe(past!.body);
    expect(second.data.buffer).toBe(first.data.buffer);
  });

  it.runIf(nativeFs() !== null)('a released batch buffer larger than the spares may hold is not kept for later batches', async () => {
    // 32 files of 256 KiB: one batch, read into one buffer of 8 MiB and 32 bytes, above the 8 MiB the spares hold.
    const reader = new SmallFileReader(nativeBatchReader(nativeFs()!));
    readers.push(reader);
    const big = Array.from({ length: 32 }, (_, i) => {
      const p = join(dir, `spare-big-${i}`);
      writeFileSync(p, Buffer.alloc(256 * 1024, i));
      return Buffer.from(p);
    });
    const read = (await Promise.all(big.map((p) => reader.read(p, 256 * 1024)))).map(ok);
    expect(read.every((r, i) => r.data.buffer === read[0]!.data.buffer && r.data[0] === i)).toBe(true);
    for (const r of read) r.release!();
    const [small] = files('spare-small', 1);
    const after = ok(await reader.read(small!.path, small!.body.length));
    expect(after.data.toString()).toBe(small!.body);
    expect(after.data.buffer === read[0]!.data.buffer).toBe(false); // (booleans: a failing toBe would print 8 MiB)
    after.release!();
    // A small batch's buffer is kept, and carries the next batch.
    const again = ok(await reader.read(small!.path, small!.body.length));
    expect(again.data.buffer === after.data.buffer).toBe(true);
  });

  it.runIf(nativeFs() !== null)("native batches asked for xattrs read them on each file's fd: the same as by path", async () => {
    const native = nativeBatchReader(nativeFs()!);
    const [plain, tagged, big, gone] = files('xattr', 4);
    setAttributeSync(tagged!.path.toString(), 'user.b', Buffer.from([0, 0xff, 0x10]));
    setAttributeSync(tagged!.path.toString(), 'user.a', Buffer.from('one'));
    // A value near what ext4 keeps for a file (one block); lists and values beyond the module's first 4 KiB
    // are read again at the size the kernel gives (xattrs-native.test.ts, on tmpfs, covers that).
    setAttributeSync(big!.path.toString(), 'user.large', Buffer.alloc(3000, 0x61));
    rmSync(gone!.path);
    const batch: Batch = { paths: [plain, tagged, big, gone].map((f) => f!.path.toString('latin1')), sizes: [plain, tagged, big, gone].map((f) => f!.body.length), xattrs: true };
    const got = await native(batch);
    expect(got.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'vanished']);
    expect(got[0]!.xattrs).toBeNull();
    for (const i of [1, 2]) {
      const f = [plain, tagged, big][i]!;
      expect(xattrsFromList(got[i]!.xattrs!)).toEqual(readXattrs(f.path));
    }
    expect([...xattrsFromList(got[1]!.xattrs!).keys()]).toEqual(['user.a', 'user.b']);
    expect(got[3]!.xattrs).toBeUndefined();
    // A file gone between two with xattrs (the module opens a whole batch before it reads any): each of the
    // others still gets its own, not a neighbour's or a cut of them.
    const mid = await native({ paths: [tagged, gone, big].map((f) => f!.path.toString('latin1')), sizes: [tagged, gone, big].map((f) => f!.body.length), xattrs: true });
    expect(mid.map((r) => r.status)).toEqual(['ok', 'vanished', 'ok']);
    expect(xattrsFromList(mid[0]!.xattrs!)).toEqual(readXattrs(tagged!.path));
    expect(xattrsFromList(mid[2]!.xattrs!)).toEqual(readXattrs(big!.path));
    // More files than the module opens at once (64): taken 64 at a time, with the same results.
    const many = files('many', 70);
    const large = [tagged, gone, ...many.slice(0, 34), big, ...many.slice(34)];
    const all = await native({ paths: large.map((f) => f!.path.toString('latin1')), sizes: large.map((f) => f!.body.length), xattrs: true });
    expect(all.map((r) => r.status)).toEqual(large.map((f) => (f === gone ? 'vanished' : 'ok')));
    expect(xattrsFromList(all[0]!.xattrs!)).toEqual(readXattrs(tagged!.path));
    expect(xattrsFromList(all[36]!.xattrs!)).toEqual(readXattrs(big!.path));
    expect(all.every((r, i) => r.status !== 'ok' || Buffer.from(r.data!, r.at, r.got).toString() === large[i]!.body)).toBe(true);
    // Not asked: none read (the producer reads them by path).
    const without = await native({ ...batch, xattrs: false });
    expect(without.map((r) => r.xattrs)).toEqual([undefined, undefined, undefined, undefined]);
    // Through the reader: asked for by its owner, handed on with the bytes.
    const reader = new SmallFileReader(native, true);
    readers.push(reader);
    const r = ok(await reader.read(tagged!.path, tagged!.body.length));
    expect(r.data.toString()).toBe(tagged!.body);
    expect(xattrsFromList(r.xattrs!).get('user.a')!.toString()).toBe('one');
    const plainReader = new SmallFileReader(native);
    readers.push(plainReader);
    expect(ok(await plainReader.read(tagged!.path, tagged!.body.length)).xattrs).toBeUndefined();
  });

  it('gives exact decimal text of 64-bit halves and of times before 1970', () => {
    expect(decimalOfHalves(0, 5)).toBe('5');
    expect(decimalOfHalves(2097151, 4294967295)).toBe(String(2n ** 53n - 1n));
    expect(decimalOfHalves(2097152, 4294967295)).toBe(String(2n ** 53n + 4294967295n));
    expect(decimalOfHalves(4294967295, 4294967295)).toBe(String(2n ** 64n - 1n));
    expect(nanosText(-1, 500000000)).toBe('-500000000');
    expect(nanosText(0, 5)).toBe('5');
    expect(nanosText(13582598400, 1)).toBe('13582598400000000001');
  });
});
