// The file engine's pure parts: path order, manifest round trip and diff,
// exclude globs, and the pax tar codec (including against tar-stream and GNU tar).

import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { comparePaths, escapeField, unescapeField } from '../../src/protocol/paths.js';
import * as fs from 'node:fs';
import type { PathLike } from 'node:fs';
import { formatEntry, manifestLine, ManifestWriter, parseEntry, readManifestLines } from '../../src/replication/file/manifest.js';
import { Delta, type DeltaItem } from '../../src/replication/file/delta.js';
import { DESCEND, listDirectory, MULTI_LINK, Walker } from '../../src/replication/file/walker.js';
import { buildExcluder, globSpec, matcherFromSpec } from '../../src/replication/file/excludes.js';
import type { Entry } from '../../src/replication/file/entry.js';
import { encodeHeader, parseTar, ZERO_BLOCKS, bodyPadding, type TarEvent } from '../../src/protocol/tar-format.js';
import { changedRanges, PIECE } from '../../src/protocol/file-pieces.js';

const B = (s: string) => Buffer.from(s);
const entry = (p: string | Buffer, extra: Partial<Entry> = {}): Entry => ({
  path: Buffer.isBuffer(p) ? p : B(p), type: 'f', size: 1, mtimeNs: 1_700_000_000_123_456_789n, ctimeNs: 5n, mode: 0o644,
  uid: 0, gid: 0, dev: 1n, ino: 2n, nlink: 1, rdev: 0, allocated: 4096, ...extra,
});

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  // deliver in awkward pieces to exercise reassembly
  for (let i = 0; i < b.length; i += 97) yield b.subarray(i, i + 97);
}
async function collect(b: Buffer): Promise<TarEvent[]> {
  const out: TarEvent[] = [];
  for await (const ev of parseTar(once(b))) out.push(ev);
  return out;
}

describe('walk order', () => {
  it('puts a directory subtree right after the directory, before siblings that sort after "/"', () => {
    const names = ['a.txt', 'a/b', 'a', 'a/b/c', 'a-z', 'b'].map(B);
    names.sort(comparePaths);
    expect(names.map(String)).toEqual(['a', 'a/b', 'a/b/c', 'a-z', 'a.txt', 'b']);
  });
  it('escapes arbitrary bytes for the manifest and back', () => {
    const raw = Buffer.from([0x61, 0x09, 0x0a, 0x25, 0xff, 0x20, 0x62]);
    const s = escapeField(raw);
    expect(s).not.toMatch(/[\t\n ]/);
    expect(unescapeField(s).equals(raw)).toBe(true);
  });
});

describe('manifest', () => {
  it('streams entries to a file and diffs old against new in one merge', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-manifest-'));
    try {
      const w = new ManifestWriter(join(dir, 'm'));
      for (const e of [entry('', { type: 'd' }), entry('a', { type: 'd' }), entry('a/gone'), entry('a/same'), entry('b', { type: 'l', target: Buffer.from([0xff, 0x0a]) })]) w.add(e);
      w.commit();
      const back = [...readManifestLines(join(dir, 'm'))].map((l, i) => parseEntry(l, `line ${i + 2}`));
      expect(back.map((e) => e.path.toString())).toEqual(['', 'a', 'a/gone', 'a/same', 'b']);
      expect(back[4]!.target!.equals(Buffer.from([0xff, 0x0a]))).toBe(true);
      expect(back[2]!.mtimeNs).toBe(1_700_000_000_123_456_789n);
      // The walk now: a/gone deleted, a/new created, a/same untouched, b retargeted, a/c unchanged again only in its inode.
      const [root, ...rest] = [entry('', { type: 'd' }), entry('a', { type: 'd' }), entry('a/new'), entry('a/same'), entry('b', { type: 'l', target: B('x') })];
      const lines = rest.map(formatEntry);
      const listing = { dir: '', lines, sizes: rest.map((e) => e.size), flags: rest.map((e) => (e.type === 'd' ? DESCEND : e.nlink > 1 ? MULTI_LINK : 0)), subdirs: ['a'], skips: [] };
      const runs = [{ listing, from: 0, to: 1 }, { listing, from: 1, to: 3 }, { listing, from: 3, to: 4 }];
      const walk = { root: formatEntry(root!), next: async () => runs.shift() ?? null };
      const items: DeltaItem[] = [];
      for await (const it of new Delta(readManifestLines(join(dir, 'm'))).items(walk as never)) items.push(it);
      const show = (x: DeltaItem) => (x.kind === 'same' ? `same:${x.lines.map((l) => l.split('\t')[0]).join(',')}` : `${x.kind}:${(x.kind === 'deleted' ? x.old : x.cur).path}`);
      expect(items.map(show)).toEqual(['same:.', 'same:a', 'deleted:a/gone', 'new:a/new', 'same:a/same', 'changed:b']);
      const changed = items[5]!;
      expect(changed.kind === 'changed' && changed.old.target!.equals(Buffer.from([0xff, 0x0a]))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("keeps the last pass's entries below a directory the walk could not list, the root included", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-manifest-'));
    try {
      const w = new ManifestWriter(join(dir, 'm'));
      for (const e of [entry('', { type: 'd' }), entry('a', { type: 'd' }), entry('a/b', { type: 'd' }), entry('a/b/x'), entry('a/y', { nlink: 2 }), entry('a-z'), entry('c')]) w.add(e);
      w.commit();
      const show = (x: DeltaItem) => (x.kind === 'same' ? `same:${x.lines.map((l) => l.split('\t')[0]).join(',')}` : `${x.kind}:${(x.kind === 'deleted' ? x.old : x.cur).path}`);
      const run = async (runs: unknown[]) => {
        const walk = { root: formatEntry(entry('', { type: 'd' })), next: async () => runs.shift() ?? null };
        const items: DeltaItem[] = [];
        for await (const it of new Delta(readManifestLines(join(dir, 'm'))).items(walk as never)) items.push(it);
        return items;
      };
      // The root lists a, a-z (c is gone); a cannot be listed: its old subtree is kept, a-z and c are merged as usual.
      const rest = [entry('a', { type: 'd' }), entry('a-z')];
      const listing = { dir: '', lines: rest.map(formatEntry), sizes: [0, 1], flags: [DESCEND, 0], subdirs: ['a'], skips: [] };
      const failed = { dir: 'a', lines: [], sizes: [], flags: [], subdirs: [], skips: [], error: 'EIO' };
      const items = await run([{ listing, from: 0, to: 1 }, { listing: failed, from: 0, to: 0, unlisted: 'a' }, { listing, from: 1, to: 2 }]);
      expect(items.map(show)).toEqual(['same:.', 'same:a', 'same:a/b,a/b/x,a/y', 'same:a-z', 'deleted:c']);
      const kept = items[2]!;
      expect(kept.kind === 'same' && kept.bytes).toBe(2);
      // a/y has other links, but an unlisted entry is never a link target: its inode is the last pass's.
      expect(kept.kind === 'same' && kept.links).toEqual([]);
      // The root itself unlisted: everything is kept.
      const all = await run([{ listing: { ...failed, dir: '' }, from: 0, to: 0, unlisted: '' }]);
      expect(all.map(show)).toEqual(['same:.', 'same:a,a/b,a/b/x,a/y,a-z,c']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('keeps the last pass\'s line of an entry the walk saw but could not describe (EIO), and of its subtree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-manifest-'));
    try {
      // The tree now: a/, a/bad (a directory whose lstat fails with EIO), a/ok; the last pass had a/bad/x too,
      // and a/gone, which is gone.
      const tree = join(dir, 'tree');
      execFileSync('mkdir', ['-p', join(tree, 'a', 'bad')]);
      writeFileSync(join(tree, 'a', 'bad', 'x'), 'x');
      writeFileSync(join(tree, 'a', 'ok'), 'ok');
      writeFileSync(join(tree, 'a', 'gone'), 'gone');
      const walkLines = async () => {
        const w = new Walker(tree, { threads: 0 });
        const out = [w.root];
        for (let st = await w.next(); st; st = await w.next()) out.push(...st.listing.lines.slice(st.from, st.to));
        await w.close();
        return out;
      };
      const mw = new ManifestWriter(join(dir, 'm'));
      mw.addOrdered(await walkLines());
      mw.commit();
      rmSync(join(tree, 'a', 'gone'));
      // listDirectory with an fs whose lstat of a/bad fails with EIO (the walk's node:fs path, no workers).
      const failing = {
        ...fs,
        lstatSync: ((p: PathLike, o?: unknown) => {
          if (String(p).endsWith('/a/bad')) throw Object.assign(new Error("EIO: i/o error, lstat 'a/bad'"), { code: 'EIO' });
          return (fs.lstatSync as (p: PathLike, o?: unknown) => unknown)(p, o);
        }) as typeof fs.lstatSync,
      };
      const lib = { fs: failing, escapeField, manifestLine };
      const rootDev = fs.lstatSync(tree, { bigint: true }).dev;
      const rootListing = listDirectory(lib, Buffer.from(tree), rootDev, () => false, '');
      const aListing = listDirectory(lib, Buffer.from(tree), rootDev, () => false, 'a');
      expect(aListing.kept).toEqual(['a/bad']);
      expect(aListing.lines.map((l) => l.split('\t')[0])).toEqual(['a/ok']);
      const runs: unknown[] = [{ listing: rootListing, from: 0, to: 1 }, { listing: aListing, from: 0, to: aListing.lines.length }];
      const walk = { root: (await walkLines())[0], next: async () => runs.shift() ?? null };
      const items: DeltaItem[] = [];
      for await (const it of new Delta(readManifestLines(join(dir, 'm'))).items(walk as never)) items.push(it);
      const show = (x: DeltaItem) => (x.kind === 'same' ? `same:${x.lines.map((l) => l.split('\t')[0]).join(',')}` : `${x.kind}:${(x.kind === 'deleted' ? x.old : x.cur).path}`);
      // a/bad and a/bad/x kept; a/gone deleted; the root and a changed (a/gone's removal moved their times) or same.
      const shown = items.map(show).filter((x) => !x.startsWith('changed:') && x !== 'same:.' && x !== 'same:a');
      expect(shown).toEqual(['same:a/bad,a/bad/x', 'deleted:a/gone', 'same:a/ok']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("writes a delta's unchanged lines in one call, still refusing a batch that starts out of walk order", () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-manifest-'));
    try {
      const w = new ManifestWriter(join(dir, 'm'));
      w.add(entry('', { type: 'd' }));
      w.addOrdered([entry('a'), entry('b'), entry('c')].map(formatEntry));
      w.addOrdered([]);
      // The batch's last line counts as what came before.
      expect(() => w.add(entry('b2'))).toThrow(/walk order/);
      expect(() => w.addOrdered([entry('c'), entry('d')].map(formatEntry))).toThrow(/walk order/);
      w.addOrdered([entry('d'), entry('e')].map(formatEntry));
      w.add(entry('f'));
      w.commit();
      expect([...readManifestLines(join(dir, 'm'))].map((l) => l.split('\t')[0])).toEqual(['.', 'a', 'b', 'c', 'd', 'e', 'f']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('refuses entries out of walk order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-manifest-'));
    const w = new ManifestWriter(join(dir, 'm'));
    w.add(entry('b'));
    expect(() => w.add(entry('a'))).toThrow(/walk order/);
    w.abandon();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('excludes', () => {
  const compileGlob = (pattern: string) => matcherFromSpec({ exact: [], contentsOf: [], globs: [globSpec(pattern)] });
  it('matches globs like rsync: names anywhere, anchored paths, ** across directories', () => {
    expect(compileGlob('*.log')('var/log/syslog.log', false)).toBe(true);
    expect(compileGlob('/cache')('cache', true)).toBe(true);
    expect(compileGlob('/cache')('x/cache', true)).toBe(false);
    expect(compileGlob('var/**/tmp')('var/a/b/tmp', true)).toBe(true);
    expect(compileGlob('build/')('src/build', false)).toBe(false);
    expect(compileGlob('build/')('src/build', true)).toBe(true);
  });
  it('drops the contents of /proc, /tmp … when walking /, but not a root the user selected inside /tmp', () => {
    const fromRoot = buildExcluder('/', { paths: ['/var/lib/ferry'] });
    expect(fromRoot('proc', true)).toBe(false);
    expect(fromRoot('proc/1', true)).toBe(true);
    expect(fromRoot('tmp/x', false)).toBe(true);
    expect(fromRoot('var/lib/ferry', true)).toBe(true);
    expect(fromRoot('lost+found', true)).toBe(true);
    expect(fromRoot('etc/passwd', false)).toBe(false);
    const inTmp = buildExcluder('/tmp/selected', {});
    expect(inTmp('file', false)).toBe(false);
  });
});

describe('pax tar codec', () => {
  it('round-trips raw-byte paths, ns mtimes, big ids, binary xattrs and FERRY records', async () => {
    const path = Buffer.concat([B('dir/'), Buffer.from([0xff, 0xfe]), B('x'.repeat(300))]);
    const xattrs = new Map([['user.bin', Buffer.from([0, 1, 0x0a, 0xff])]]);
    const h = encodeHeader({ path, type: 'file', size: 3, mode: 0o4755, uid: 4_000_000_000, gid: 7, mtimeNs: 1_700_000_000_000_000_007n, xattrs, ferry: { map: '0+3', size: '10' } });
    const tar = Buffer.concat([h, B('abc'), bodyPadding(3), ZERO_BLOCKS]);
    const evs = await collect(tar);
    const e = evs[0]!;
    if (e.kind !== 'entry') throw new Error('no entry');
    expect(e.entry.header.path.equals(path)).toBe(true);
    expect(e.entry.header.uid).toBe(4_000_000_000);
    expect(e.entry.header.mode).toBe(0o4755);
    expect(e.entry.header.mtimeNs).toBe(1_700_000_000_000_000_007n);
    expect(e.entry.header.xattrs!.get('user.bin')!.equals(xattrs.get('user.bin')!)).toBe(true);
    expect(e.entry.header.ferry).toEqual({ map: '0+3', size: '10' });
    expect(Buffer.concat(evs.filter((x) => x.kind === 'data').map((x) => (x as { chunk: Buffer }).chunk)).toString()).toBe('abc');
  });
  it('writes tar that GNU tar lists', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-tar-'));
    try {
      const body = B('hello\n');
      const tar = Buffer.concat([
        encodeHeader({ path: B('a/long-' + 'n'.repeat(150)), type: 'file', size: body.length, mode: 0o640, uid: 1, gid: 2, mtimeNs: 1_600_000_000_500_000_000n }),
        body, bodyPadding(body.length),
        encodeHeader({ path: B('a/link'), type: 'symlink', size: 0, mode: 0o777, uid: 0, gid: 0, mtimeNs: 0n, linkpath: B('target') }),
        ZERO_BLOCKS,
      ]);
      writeFileSync(join(dir, 't.tar'), tar);
      const out = execFileSync('tar', ['--numeric-owner', '-tvf', join(dir, 't.tar')], { encoding: 'utf8' });
      expect(out).toContain('a/long-' + 'n'.repeat(150));
      expect(out).toContain('a/link -> target');
      expect(out).toContain('1/2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('carries times before 1970 exactly, both ways with GNU tar', async () => {
    const times = [-12_750_000_000n, -500_000_000n, -1n, -86_400_000_000_000n];
    const dir = mkdtempSync(join(tmpdir(), 'ferry-tar-'));
    try {
      // Ours, read back by us and extracted by GNU tar.
      const tar = Buffer.concat([...times.map((t, i) => encodeHeader({ path: B(`f${i}`), type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtimeNs: t })), ZERO_BLOCKS]);
      const back = (await collect(tar)).filter((e) => e.kind === 'entry').map((e) => (e as { entry: { header: { mtimeNs: bigint } } }).entry.header.mtimeNs);
      expect(back).toEqual(times);
      writeFileSync(join(dir, 't.tar'), tar);
      mkdirSync(join(dir, 'x'));
      execFileSync('tar', ['-xf', join(dir, 't.tar'), '-C', join(dir, 'x')]);
      expect(times.map((_t, i) => statSync(join(dir, 'x', `f${i}`), { bigint: true }).mtimeNs)).toEqual(times);
      // GNU tar's pax records of such times, read by us.
      execFileSync('touch', ['-d', '1969-12-31 23:59:47.25 UTC', join(dir, 'x', 'f0')]);
      const gnu = execFileSync('tar', ['--format=pax', '-C', join(dir, 'x'), '-cf', '-', 'f0']);
      const [h] = (await collect(gnu)).filter((e) => e.kind === 'entry').map((e) => (e as { entry: { header: { mtimeNs: bigint } } }).entry.header.mtimeNs);
      expect(h).toBe(-12_750_000_000n);
      // More than nine digits of fraction: to the nanosecond rounded down, before 1970 as after.
      const fine = async (v: string) => {
        const t = execFileSync('tar', ['--format=pax', `--pax-option=mtime:=${v}`, '-C', join(dir, 'x'), '-cf', '-', 'f0']);
        return (await collect(t)).filter((e) => e.kind === 'entry').map((e) => (e as { entry: { header: { mtimeNs: bigint } } }).entry.header.mtimeNs)[0];
      };
      expect(await fine('-1.0000000005')).toBe(-1_000_000_001n);
      expect(await fine('-1.0000000000')).toBe(-1_000_000_000n);
      expect(await fine('1.0000000005')).toBe(1_000_000_000n);
      expect(await fine('-0.5')).toBe(-500_000_000n);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('refuses oversized pax headers and bad checksums, naming the entry', async () => {
    const big = encodeHeader({ path: B('victim'), type: 'file', size: 0, mode: 0, uid: 0, gid: 0, mtimeNs: 0n, ferry: { pad: 'x'.repeat(2 << 20) } });
    await expect(collect(big)).rejects.toThrow(/entry #0 .*pax header of \d+ bytes exceeds/);
    const h = encodeHeader({ path: B('ok'), type: 'file', size: 0, mode: 0, uid: 0, gid: 0, mtimeNs: 0n });
    h[h.length - 512 + 10] ^= 1;
    await expect(collect(h)).rejects.toThrow(/checksum mismatch/);
  });
  it("reads GNU tar's own headers (ustar, gnu and pax formats) and refuses a non-octal field", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-tar-'));
    try {
      writeFileSync(join(dir, 'a.txt'), 'twelve bytes');
      execFileSync('chmod', ['0640', join(dir, 'a.txt')]);
      for (const format of ['ustar', 'gnu', 'pax']) {
        const tar = execFileSync('tar', [`--format=${format}`, '--owner=1234', '--group=56', '-C', dir, '-cf', '-', 'a.txt']);
        const entries = (await collect(tar)).filter((e) => e.kind === 'entry').map((e) => (e as { entry: { header: { path: Buffer; size: number; mode: number; uid: number; gid: number } } }).entry.header);
        expect(entries.map((h) => [h.path.toString(), h.size, h.mode, h.uid, h.gid])).toEqual([['a.txt', 12, 0o640, 1234, 56]]);
      }
      // A mode field of "0x12": the checksum is made right, the field is still refused.
      const tar = execFileSync('tar', ['--format=ustar', '-C', dir, '-cf', '-', 'a.txt']);
      tar.write('0x12\0\0\0\0', 100, 'latin1');
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : tar[i]!;
      tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
      await expect(collect(tar)).rejects.toThrow(/bad octal field "0x12"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('large-file pieces', () => {
  it('merges adjacent changed pieces and treats pieces past the receiver copy as changed', () => {
    const local = Buffer.alloc(8 * 5, 1);
    const remote = Buffer.alloc(8 * 3, 1);
    remote[8] = 9; // piece 1 differs
    expect(changedRanges(local, remote, 4 * PIECE + 10)).toEqual([
      { off: PIECE, len: PIECE },
      { off: 3 * PIECE, len: PIECE + 10 },
    ]);
  });
});
