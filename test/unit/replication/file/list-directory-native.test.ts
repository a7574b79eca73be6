// listDirectory's use of a native lister's answers, branch by branch, on a
// real directory. The native lister here is a stand-in that answers as
// ferry-fs.c does (names latin1 joined by NUL, 16 stat doubles per entry,
// -errno at index 6 for an entry whose lstat failed, symlink targets joined
// by NUL with '' where one could not be read, manifest lines joined by
// newlines with '' where it made none, errors with and without .errno): an entry that vanishes between the directory read and its lstat
// cannot be produced on demand with the real one. The real one is tested in
// test/unit/platform/native-fs.test.ts and test/integration/file-walker.test.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listDirectory, rawLstatFor } from '../../../../src/replication/file/walker.js';
import { escapeField } from '../../../../src/protocol/paths.js';
import { manifestLine } from '../../../../src/replication/file/manifest.js';
import { nativeFs, type NativeListdir } from '../../../../src/platform/native-fs.js';

const lib = { fs, escapeField, manifestLine };
const none = () => false;

/** Node's raw lstat fields of `path` (the first 16), as the native lister gives them. */
function fields(path: string): number[] {
  const a = rawLstatFor(fs, Buffer.from(path))!(Buffer.from(path))!;
  return Array.from(a.subarray(0, 16));
}

describe('listDirectory with a native lister', () => {
  let dir: string;
  let root: Buffer;
  let dev: bigint;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-listdir-'));
    for (const n of ['a', 'b', 'c']) writeFileSync(join(dir, n), n);
    root = Buffer.from(dir);
    dev = fs.lstatSync(dir, { bigint: true }).dev;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const plain = () => listDirectory(lib, root, dev, none, '', rawLstatFor(fs, root));

  it("uses its names and fields: the same lines as node:fs, marked as the native lister's", () => {
    const native: NativeListdir = () => ['a\0b\0c', Float64Array.from(['a', 'b', 'c'].flatMap((n) => fields(join(dir, n))))];
    const got = listDirectory(lib, root, dev, none, '', null, native);
    expect(got.native).toBe(true);
    expect(got.lines).toEqual(plain().lines);
    expect(plain().native).toBeUndefined();
  });

  it('skips an entry whose lstat found it gone, and asks lstat again for any other failure', () => {
    const failed = (errno: number) => {
      const f = new Array<number>(16).fill(0);
      f[6] = -errno;
      return f;
    };
    // 'b' vanished (ENOENT); 'c' failed with EIO there, and lstat by path finds it now.
    const native: NativeListdir = () => ['a\0b\0c', Float64Array.from([...fields(join(dir, 'a')), ...failed(2), ...failed(5)])];
    const got = listDirectory(lib, root, dev, none, '', null, native);
    expect(got.skips).toEqual([{ path: 'b', reason: 'vanished during the walk' }]);
    expect(got.lines.map((l) => l.split('\t')[0])).toEqual(['a', 'c']);
    expect(got.lines).toEqual(plain().lines.filter((l) => !l.startsWith('b\t')));
  });

  it("takes a file-system error as the directory's, and lists with node:fs after any other", () => {
    const fsError: NativeListdir = () => {
      throw Object.assign(new Error("EACCES: Permission denied, scandir 'x'"), { code: 'EACCES', errno: -13 });
    };
    expect(listDirectory(lib, root, dev, none, '', null, fsError)).toMatchObject({ error: "EACCES: Permission denied, scandir 'x'", lines: [] });
    const tooMany: NativeListdir = () => {
      throw Object.assign(new Error(`FERRY_NATIVE_TOO_MANY: ${dir}`), { code: 'FERRY_NATIVE_TOO_MANY' });
    };
    const got = listDirectory(lib, root, dev, none, '', rawLstatFor(fs, root), tooMany);
    expect(got.error).toBeUndefined();
    expect(got.native).toBeUndefined();
    expect(got.lines).toEqual(plain().lines);
  });

  it('reads a directory the lister declines through an fd opened beneath the root: a symlink put in its place or above it, before or during the listing, is not followed', () => {
    const n = nativeFs();
    expect(n, 'the native module (npm run build)').not.toBeNull();
    const beneath = { open: n!.openDirBeneath, close: n!.closeFd };
    const top = mkdtempSync(join(tmpdir(), 'ferry-listdir-beneath-'));
    try {
      const tree = join(top, 'tree');
      mkdirSync(join(tree, 'a', 'big'), { recursive: true });
      for (const n of ['f1', 'f2']) writeFileSync(join(tree, 'a', 'big', n), n);
      symlinkSync('f1', join(tree, 'a', 'big', 'l1'));
      mkdirSync(join(top, 'elsewhere', 'big'), { recursive: true });
      writeFileSync(join(top, 'elsewhere', 'big', 'secret'), 'not in the tree');
      const treeRoot = Buffer.from(tree);
      const treeDev = fs.lstatSync(tree, { bigint: true }).dev;
      const tooMany: NativeListdir = () => {
        throw Object.assign(new Error('FERRY_NATIVE_TOO_MANY'), { code: 'FERRY_NATIVE_TOO_MANY' });
      };
      const fds = () => readdirSync('/proc/self/fd').length;
      const before = fds();
      // Read through the fd: the same lines as node:fs by path, and the fd closed afterwards.
      const viaFd = listDirectory(lib, treeRoot, treeDev, none, 'a/big', rawLstatFor(fs, treeRoot), tooMany, beneath);
      expect(viaFd.error).toBeUndefined();
      expect(viaFd.lines).toEqual(listDirectory(lib, treeRoot, treeDev, none, 'a/big', rawLstatFor(fs, treeRoot)).lines);
      expect(viaFd.lines.map((l) => l.split('\t')[0])).toEqual(['a/big/f1', 'a/big/f2', 'a/big/l1']);
      expect(viaFd.lines[2]!.split('\t')[13]).toBe('f1');
      // a becomes a symlink to elsewhere after its listing: a/big would be elsewhere/big.
      renameSync(join(tree, 'a'), join(tree, 'a.real'));
      symlinkSync(join(top, 'elsewhere'), join(tree, 'a'));
      const swapped = listDirectory(lib, treeRoot, treeDev, none, 'a/big', rawLstatFor(fs, treeRoot), tooMany, beneath);
      expect(swapped.lines).toEqual([]);
      expect(swapped.error).toMatch(/^(ELOOP|ENOTDIR)/);
      expect(fds()).toBe(before);
      // What this guards against: node:fs by path follows it out of the tree.
      expect(listDirectory(lib, treeRoot, treeDev, none, 'a/big', rawLstatFor(fs, treeRoot), tooMany).lines.map((l) => l.split('\t')[0])).toEqual(['a/big/secret']);
      // The wider window: the swap lands after the names are read, while each entry is lstat'ed (a directory of
      // 100,000 entries takes about a second). Through the fd every entry is still the tree's own.
      rmSync(join(tree, 'a'));
      renameSync(join(tree, 'a.real'), join(tree, 'a'));
      for (const n of ['f1', 'f2']) writeFileSync(join(top, 'elsewhere', 'big', n), 'elsewhere, longer');
      const rawLstat = rawLstatFor(fs, treeRoot)!;
      let swappedYet = false;
      const swapAtFirstLstat = (path: Buffer) => {
        if (!swappedYet) {
          swappedYet = true;
          renameSync(join(tree, 'a'), join(tree, 'a.real'));
          symlinkSync(join(top, 'elsewhere'), join(tree, 'a'));
        }
        return rawLstat(path);
      };
      const during = listDirectory(lib, treeRoot, treeDev, none, 'a/big', swapAtFirstLstat, tooMany, beneath);
      expect(swappedYet).toBe(true);
      expect(during.lines).toEqual(viaFd.lines);
      expect(fds()).toBe(before);
      // What goes wrong names the directory's own path, as node:fs by path says it, not /proc/self/fd/N.
      rmSync(join(tree, 'a'));
      renameSync(join(tree, 'a.real'), join(tree, 'a'));
      const failing = (path: Buffer) => {
        throw Object.assign(new Error(`EIO: i/o error, lstat '${path.toString()}'`), { code: 'EIO' });
      };
      const failed = listDirectory(lib, treeRoot, treeDev, none, 'a/big', failing, tooMany, beneath);
      expect(failed.skips[0]).toEqual({ path: 'a/big/f1', reason: `EIO: i/o error, lstat '${join(tree, 'a', 'big', 'f1')}'` });
      expect(fds()).toBe(before);
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });

  it("takes each symlink's target from the lister in order, and reads it by path only where the lister gave ''", () => {
    const links = mkdtempSync(join(tmpdir(), 'ferry-listdir-links-'));
    try {
      for (const n of ['l1', 'l2', 'l3']) symlinkSync(`to-${n}`, join(links, n));
      writeFileSync(join(links, 'm-file'), '');
      const linksRoot = Buffer.from(links);
      const linksDev = fs.lstatSync(links, { bigint: true }).dev;
      const names = ['l1', 'l2', 'l3', 'm-file'];
      const stats = Float64Array.from(names.flatMap((n) => fields(join(links, n))));
      // The lister's own answers win (they are what it read); '' means ask again by path.
      const native: NativeListdir = () => [names.join('\0'), stats, 'from-lister-1\0\0from-lister-3'];
      // l2 is excluded: its target is still taken in turn, so l3 gets the third.
      const got = listDirectory(lib, linksRoot, linksDev, (p) => p === 'l2', '', null, native);
      expect(got.lines.map((l) => [l.split('\t')[0], l.split('\t')[13]])).toEqual([['l1', 'from-lister-1'], ['l3', 'from-lister-3'], ['m-file', '-']]);
      // Entries whose lstat failed there (one vanished, one asked again by path) have no target in the list:
      // 'a-gone' and 'b-eio' come before the symlinks and take none of theirs.
      const failed = (errno: number) => Object.assign(new Array<number>(16).fill(0), { 6: -errno });
      const withFailures: NativeListdir = () => [
        ['a-gone', 'b-eio', ...names].join('\0'),
        Float64Array.from([...failed(2), ...failed(5), ...stats]),
        'from-lister-1\0from-lister-2\0from-lister-3',
      ];
      const mixed = listDirectory(lib, linksRoot, linksDev, none, '', null, withFailures);
      expect(mixed.lines.map((l) => [l.split('\t')[0], l.split('\t')[13]])).toEqual([['l1', 'from-lister-1'], ['l2', 'from-lister-2'], ['l3', 'from-lister-3'], ['m-file', '-']]);
      expect(mixed.skips.map((k) => k.path)).toEqual(['a-gone', 'b-eio']);
      const byPath: NativeListdir = () => [names.join('\0'), stats, '\0\0'];
      const plainLinks = listDirectory(lib, linksRoot, linksDev, none, '', rawLstatFor(fs, linksRoot));
      expect(listDirectory(lib, linksRoot, linksDev, none, '', null, byPath).lines).toEqual(plainLinks.lines);
      expect(plainLinks.lines.map((l) => l.split('\t')[13])).toEqual(['to-l1', 'to-l2', 'to-l3', '-']);
    } finally {
      rmSync(links, { recursive: true, force: true });
    }
  });

  it("uses the lister's lines where it made them, and makes the rest itself (none given, or stats it takes from lstat by path)", () => {
    const ownLines = plain().lines;
    const f = ['a', 'b', 'c'].map((n) => fields(join(dir, n)));
    // 'a': the lister's line (a marker, to see it is taken as given); 'b': none made there; 'c': a time at 0 s,
    // which this loop takes from lstat's bigints by path: its own line, not the lister's.
    const c = [...f[2]!];
    c[12] = 0;
    const native: NativeListdir = (_d, _follow, prefix) => {
      expect(prefix).toEqual(Buffer.alloc(0));
      return ['a\0b\0c', Float64Array.from([...f[0]!, ...f[1]!, ...c]), '', 'LISTER-LINE-a\n\nLISTER-LINE-c'];
    };
    expect(listDirectory(lib, root, dev, none, '', null, native).lines).toEqual(['LISTER-LINE-a', ownLines[1], ownLines[2]]);
    // Below the root, the directory's escaped path and a slash come as the prefix.
    const prefixes: string[] = [];
    listDirectory(lib, root, dev, none, 'sub dir', null, (_d, _follow, prefix) => {
      prefixes.push(prefix!.toString('latin1'));
      return ['', new Float64Array(0), '', ''];
    });
    expect(prefixes).toEqual(['sub%20dir/']);
  });

  it('opens the root as named (follow) and every directory below it without following', () => {
    const asked: boolean[] = [];
    const native: NativeListdir = (_d, follow) => {
      asked.push(follow === true);
      return ['', new Float64Array(0)];
    };
    listDirectory(lib, root, dev, none, '', null, native);
    listDirectory(lib, root, dev, none, 'sub', null, native);
    expect(asked).toEqual([true, false]);
  });
});
