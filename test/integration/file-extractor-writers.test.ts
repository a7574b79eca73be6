// The extractor hands small new files to writer threads (receiver/
// file-writers.ts) and keeps the order a stream asks for: an entry is
// reported in place (onEntry, which the session turns into the resume
// point) only once it and everything before it are under their real names
// with their whole content; a hard link finds its target written; a
// directory's mtime is set after the last file written into it; nothing is
// left under a temporary name. New files go straight to their real names
// (O_EXCL): a name already taken goes the careful way (temporary name,
// rename over it), and a partial file a cut session left is replaced.
// Symlinks and directories in a new directory are made under their real
// names too (symlink(2) and mkdir(2) refuse a name that is taken).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileExtractor } from '../../src/receiver/file-extractor.js';
import { encodeHeader, ZERO_BLOCKS, bodyPadding, type TarHeader } from '../../src/protocol/tar-format.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-writers-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const T = 1_600_000_000_000_000_000n;
const uid = process.getuid!();
const gid = process.getgid!();
const h = (path: string, extra: Partial<TarHeader> = {}): TarHeader => ({ path: Buffer.from(path), type: 'file', size: 0, mode: 0o644, uid, gid, mtimeNs: T, ...extra });

function stream(entries: [TarHeader, Buffer?][]): Buffer {
  const parts: Buffer[] = [];
  for (const [hd, body = Buffer.alloc(0)] of entries) parts.push(encodeHeader({ ...hd, size: hd.type === 'file' ? body.length : 0 }), body, bodyPadding(body.length));
  parts.push(ZERO_BLOCKS);
  return Buffer.concat(parts);
}
async function* pieces(b: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += 64 * 1024) yield b.subarray(i, i + 64 * 1024);
}
const body = (i: number) => Buffer.alloc(1000 + i * 37, `file ${i} `);

describe('small files written by the writer threads', () => {
  it('reports each entry only once it is in place, links after their target, directory times after their contents', async () => {
    const entries: [TarHeader, Buffer?][] = [[h('d', { type: 'dir', mode: 0o755, mtimeNs: T + 1_000_000n })]];
    for (let i = 0; i < 300; i++) entries.push([h(`d/f${i}`, { mtimeNs: T + BigInt(i) * 1_000_000n }), body(i)]);
    entries.push([h('d/hl', { type: 'link', linkpath: Buffer.from('d/f299') })]);
    entries.push([h('d/sub', { type: 'dir', mode: 0o750, mtimeNs: T + 2_000_000n })]);
    for (let i = 0; i < 100; i++) entries.push([h(`d/sub/g${i}`, { mode: 0o600 }), body(i)]);
    entries.push([h('e', { type: 'dir', mode: 0o755, mtimeNs: T + 3_000_000n })]);
    entries.push([h('e/last'), body(7)]);

    const reported: string[] = [];
    const notInPlace: string[] = [];
    const ex = new FileExtractor({
      root,
      onEntry: (i, p) => {
        // Everything up to and including entry i is under its real name, whole.
        reported.push(p.toString());
        const [hd, b] = entries[i]!;
        const abs = join(root, p.toString());
        const st = lstatSync(abs, { throwIfNoEntry: false });
        if (!st || (hd.type === 'file' && !readFileSync(abs).equals(b!))) notInPlace.push(p.toString());
      },
    });
    const stats = await ex.extract(pieces(stream(entries)));

    expect(notInPlace).toEqual([]);
    expect(reported).toEqual(entries.map(([hd]) => hd.path.toString()));
    expect(stats).toMatchObject({ entries: entries.length, files: 401 });
    expect(lstatSync(join(root, 'd/hl')).ino).toBe(lstatSync(join(root, 'd/f299')).ino);
    expect(Math.round(lstatSync(join(root, 'd/f5')).mtimeMs)).toBe(Number((T + 5_000_000n) / 1_000_000n));
    expect(lstatSync(join(root, 'd/sub/g3')).mode & 0o7777).toBe(0o600);
    expect(Math.round(lstatSync(join(root, 'd')).mtimeMs)).toBe(Number((T + 1_000_000n) / 1_000_000n));
    expect(Math.round(lstatSync(join(root, 'd/sub')).mtimeMs)).toBe(Number((T + 2_000_000n) / 1_000_000n));
    expect(lstatSync(join(root, 'd/sub')).mode & 0o7777).toBe(0o750);
    expect(readdirSync(join(root, 'd')).filter((n) => n.startsWith('.ferry-tmp-'))).toEqual([]);
    expect(readdirSync(join(root, 'd/sub')).length).toBe(100);
  });

  it('a name already taken in a new directory goes the careful way: a symlink there is replaced, never written through; a path named twice ends with the later content', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'ferry-writers-outside-'));
    try {
      writeFileSync(join(outside, 'precious'), 'keep');
      const entries: [TarHeader, Buffer?][] = [[h('d', { type: 'dir', mode: 0o755 })]];
      entries.push([h('d/s', { type: 'symlink', linkpath: Buffer.from(join(outside, 'precious')) })]);
      entries.push([h('d/s'), Buffer.from('new content')]);
      entries.push([h('d/twice'), Buffer.from('first')]);
      entries.push([h('d/twice'), Buffer.from('second, longer')]);
      await new FileExtractor({ root }).extract(pieces(stream(entries)));
      expect(lstatSync(join(root, 'd/s')).isFile()).toBe(true);
      expect(readFileSync(join(root, 'd/s'), 'utf8')).toBe('new content');
      expect(readFileSync(join(outside, 'precious'), 'utf8')).toBe('keep');
      expect(readFileSync(join(root, 'd/twice'), 'utf8')).toBe('second, longer');
      expect(readdirSync(join(root, 'd')).sort()).toEqual(['s', 'twice']);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('symlinks and directories in a new directory are made under their real names, with the stream\'s mode and times; a symlink named twice ends as the later one', async () => {
    const entries: [TarHeader, Buffer?][] = [[h('d', { type: 'dir', mode: 0o755, mtimeNs: T + 4_000_000n })]];
    entries.push([h('d/l', { type: 'symlink', linkpath: Buffer.from('first'), mtimeNs: T + 5_000_000n })]);
    entries.push([h('d/l', { type: 'symlink', linkpath: Buffer.from('second'), mtimeNs: T + 6_000_000n })]);
    entries.push([h('d/plain', { type: 'dir', mode: 0o705, mtimeNs: T + 7_000_000n })]);
    entries.push([h('d/plain/in', { type: 'symlink', linkpath: Buffer.from('../l') })]);
    entries.push([h('d/sticky', { type: 'dir', mode: 0o1777 })]);
    const reported: string[] = [];
    await new FileExtractor({ root, onEntry: (_i, p) => reported.push(p.toString()) }).extract(pieces(stream(entries)));
    expect(reported).toEqual(entries.map(([hd]) => hd.path.toString()));
    expect(readlinkSync(join(root, 'd/l'))).toBe('second');
    expect(Math.round(lstatSync(join(root, 'd/l')).mtimeMs)).toBe(Number((T + 6_000_000n) / 1_000_000n));
    expect(readlinkSync(join(root, 'd/plain/in'))).toBe('../l');
    expect(lstatSync(join(root, 'd/plain')).mode & 0o7777).toBe(0o705);
    expect(Math.round(lstatSync(join(root, 'd/plain')).mtimeMs)).toBe(Number((T + 7_000_000n) / 1_000_000n));
    expect(lstatSync(join(root, 'd/sticky')).mode & 0o7777).toBe(0o1777);
    expect(lstatSync(join(root, 'd/plain')).uid).toBe(uid);
    expect(readdirSync(join(root, 'd')).sort()).toEqual(['l', 'plain', 'sticky']);
    expect(Math.round(lstatSync(join(root, 'd')).mtimeMs)).toBe(Number((T + 4_000_000n) / 1_000_000n));
  });

  it('times before 1970 are kept on every kind of entry, batched or not (node:fs would set the current time); times to the microsecond on every path', async () => {
    // 1969-12-31 23:59:47.25 and a quarter of a second apart: exact in the seconds (doubles) node:fs and the writer take.
    const old = -12_750_000_000n;
    const q = 250_000_000n;
    const entries: [TarHeader, Buffer?][] = [[h('d', { type: 'dir', mode: 0o755, mtimeNs: old })]];
    entries.push([h('d/small', { mtimeNs: old - q }), body(1)]);
    entries.push([h('d/large', { mtimeNs: old - 2n * q }), Buffer.alloc(300 * 1024, 'L')]);
    entries.push([h('d/link', { type: 'symlink', linkpath: Buffer.from('small'), mtimeNs: old - 3n * q })]);
    // Not a binary fraction: the small file (batched) to the microsecond; after 1970, to the microsecond on every path.
    entries.push([h('d/small-ms', { mtimeNs: -1_001_000_000n }), body(2)]);
    const after = 1_700_000_000_500_001_000n;
    entries.push([h('e', { type: 'dir', mode: 0o755, mtimeNs: after })]);
    entries.push([h('e/small', { mtimeNs: after }), body(3)]);
    entries.push([h('e/large', { mtimeNs: after }), Buffer.alloc(300 * 1024, 'M')]);
    entries.push([h('e/link', { type: 'symlink', linkpath: Buffer.from('small'), mtimeNs: after })]);
    await new FileExtractor({ root }).extract(pieces(stream(entries)));
    const ns = (p: string) => lstatSync(join(root, p), { bigint: true }).mtimeNs;
    expect([ns('d'), ns('d/small'), ns('d/large'), ns('d/link')]).toEqual([old, old - q, old - 2n * q, old - 3n * q]);
    expect(ns('d/small-ms')).toBe(-1_001_000_000n);
    expect([ns('e'), ns('e/small'), ns('e/large'), ns('e/link')]).toEqual([after, after, after, after]);
  });

  it('a name handed to the writer threads and then named again (a symlink, a directory, a large file) ends as the later entry', async () => {
    // A stream that names a path twice (a hostile or broken agent): the small file goes to a writer thread, the
    // symlink or directory after it must not be made before the file is in place, or the file would replace it.
    const entries: [TarHeader, Buffer?][] = [[h('d', { type: 'dir', mode: 0o755 })]];
    for (let i = 0; i < 5; i++) entries.push([h(`d/f${i}`), body(i)]);
    const large = Buffer.alloc(300 * 1024, 'large '); // written on the extractor's own thread
    entries.push([h('d/f2'), large]);
    entries.push([h('d/f1', { type: 'symlink', linkpath: Buffer.from('f0') })]);
    entries.push([h('d/f3', { type: 'dir', mode: 0o750 })]);
    entries.push([h('d/f3/in'), body(9)]);
    await new FileExtractor({ root }).extract(pieces(stream(entries)));
    expect(readFileSync(join(root, 'd/f2')).equals(large)).toBe(true);
    expect(readlinkSync(join(root, 'd/f1'))).toBe('f0');
    expect(lstatSync(join(root, 'd/f3')).isDirectory()).toBe(true);
    expect(readFileSync(join(root, 'd/f3/in')).equals(body(9))).toBe(true);
    expect(readFileSync(join(root, 'd/f4')).equals(body(4))).toBe(true);
    expect(readdirSync(join(root, 'd')).sort()).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
  });

  it('a partial file left under its real name by a cut session is replaced when the pass sends it again', async () => {
    // What a receiver killed while a writer wrote d/f3 leaves: d made by that session, f0..f2 whole, f3 cut short.
    mkdirSync(join(root, 'd'));
    for (let i = 0; i < 3; i++) writeFileSync(join(root, `d/f${i}`), body(i));
    writeFileSync(join(root, 'd/f3'), body(3).subarray(0, 100));
    // The resumed pass sends everything after its resume point again (here: all of it).
    const entries: [TarHeader, Buffer?][] = [[h('d', { type: 'dir', mode: 0o755 })]];
    for (let i = 0; i < 10; i++) entries.push([h(`d/f${i}`), body(i)]);
    await new FileExtractor({ root }).extract(pieces(stream(entries)));
    for (let i = 0; i < 10; i++) expect(readFileSync(join(root, `d/f${i}`)).equals(body(i))).toBe(true);
    expect(readdirSync(join(root, 'd')).length).toBe(10);
  });

  it('a stream cut inside a batched file leaves the files before it in place and no temporary file', async () => {
    const entries: [TarHeader, Buffer?][] = [[h('d', { type: 'dir', mode: 0o755 })]];
    for (let i = 0; i < 10; i++) entries.push([h(`d/f${i}`), body(i)]);
    const full = stream(entries);
    const cut = full.subarray(0, full.length - 1024 - 512 - 600); // inside f9's body
    await expect(new FileExtractor({ root }).extract(pieces(cut))).rejects.toThrow(/stream ends inside its body/);
    expect(readdirSync(join(root, 'd')).sort()).toEqual(['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8']);
    for (let i = 0; i < 9; i++) expect(readFileSync(join(root, `d/f${i}`)).equals(body(i))).toBe(true);
  });
});

// On btrfs with less than 2 GiB free the extractor has each new small file
// (those the writer threads write) truncated to 0 once created, so that
// closing it starts its writeback (file-extractor.ts, BTRFS_FLUSH_FREE_BYTES:
// there the creates would wait on btrfs's metadata reservations for all the
// unwritten data; with more room that only costs). Right after the pass,
// before any sync, the extent map shows which: a file whose data is still
// only in the page cache has a `delalloc` extent. ext4 would flush such a
// file on close too (auto_da_alloc): there the files keep their delayed
// allocation, as on btrfs with room.
const fsEnv = needs({ root: true, tools: ['mkfs.btrfs', 'mkfs.ext4', 'filefrag', 'fallocate'] });
describe.runIf(fsEnv.ok)('new files on btrfs', () => {
  let disk: LoopDisk | undefined;
  afterEach(() => {
    disk?.destroy();
    disk = undefined;
  });

  /**
   * Extracts 200 small files (the writer threads) and one of 1 MiB (the extractor's own thread) at the root of a
   * new file system of `sizeBytes`, after `usedBytes` were allocated there; the small files whose data is still delayed.
   */
  async function delayedAfterPass(mkfs: string[], sizeBytes: number, usedBytes = 0): Promise<{ delayed: string[]; at: string; entries: [TarHeader, Buffer?][] }> {
    disk = LoopDisk.create(sizeBytes, 'ferry-writers-fs-');
    sh(mkfs[0]!, [...mkfs.slice(1), disk.device]);
    const at = disk.mount(disk.device);
    if (usedBytes > 0) {
      sh('fallocate', ['-l', String(usedBytes), join(at, 'taken')]);
      sh('sync', ['-f', at]);
    }
    const entries: [TarHeader, Buffer?][] = [[h('d', { type: 'dir', mode: 0o755 })]];
    for (let i = 0; i < 200; i++) entries.push([h(`d/f${i}`), body(i)]);
    entries.push([h('d/large'), Buffer.alloc(1024 * 1024, 'large ')]);
    await new FileExtractor({ root: at }).extract(pieces(stream(entries)));
    const files = entries.filter(([e]) => e.type === 'file' && e.path.toString() !== 'd/large').map(([e]) => e.path.toString());
    // filefrag -v: one "File size of PATH is …" line per file, then its extents with their flags.
    const out = sh('filefrag', ['-v', ...files.map((f) => join(at, f))]);
    const delayed = new Set<string>();
    let current = '';
    for (const line of out.split('\n')) {
      const m = /^File size of (.+) is \d+/.exec(line);
      if (m) current = m[1]!.slice(at.length + 1);
      else if (/\bdelalloc\b/.test(line)) delayed.add(current);
    }
    return { delayed: [...delayed], at, entries };
  }

  const MIB = 1024 * 1024;

  it('with little free space, each new small file is on its way to the disk when the pass ends; every file has its content', async () => {
    const { delayed, at, entries } = await delayedAfterPass(['mkfs.btrfs', '-q', '-f'], 512 * MIB);
    expect(delayed).toEqual([]);
    for (const [e, b] of entries) if (e.type === 'file') expect(readFileSync(join(at, e.path.toString())).equals(b!)).toBe(true);
    expect(lstatSync(join(at, 'd/f7')).mode & 0o7777).toBe(0o644);
    expect(Math.round(lstatSync(join(at, 'd/f7')).mtimeMs)).toBe(Number(T / 1_000_000n));
  });

  it('what counts is the space available: on an empty 3 GiB btrfs the files keep their delayed allocation, with 700 MiB of it taken they do not', async () => {
    const roomy = await delayedAfterPass(['mkfs.btrfs', '-q', '-f'], 3072 * MIB);
    expect(roomy.delayed.length).toBeGreaterThan(150);
    disk!.destroy();
    disk = undefined;
    // About 1.8 GiB available (f_bavail), 2.3 GiB free (f_bfree, which counts btrfs's unused metadata space too).
    const taken = await delayedAfterPass(['mkfs.btrfs', '-q', '-f'], 3072 * MIB, 700 * MIB);
    expect(taken.delayed).toEqual([]);
  });

  it('on ext4 the files keep their delayed allocation (the truncate is for btrfs only; ext4 would flush them on close)', async () => {
    const { delayed } = await delayedAfterPass(['mkfs.ext4', '-q', '-F'], 512 * MIB);
    expect(delayed.length).toBeGreaterThan(150);
  });
});
