// The native xattr read (src/native/ferry-fs.c `xattrs`, built by `npm run
// build`) against @napi-rs/xattr on real files of this machine's file system:
// the same names and values, sorted alike, for no xattrs, binary and empty
// values, a POSIX ACL, a directory, a symlink (its own, never its target's),
// a list and a value larger than the call's first buffer (on tmpfs: ext4
// keeps at most one block of xattrs an inode), and values that change size
// between the calls (a stand-in C library); by path and by fd;
// a file name that is not UTF-8 (only the native read reaches it); an xattr
// name that is not UTF-8 (refused by both); node:fs-like errors. Then writeXattrs on its native branch: sets, removes, and leaves
// alone what already matches.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNativeFs, type NativeXattrs } from '../../../src/platform/native-fs.js';
import { readXattrs, readXattrsNative, readXattrsWithLibrary, writeXattrs } from '../../../src/platform/xattrs-linux.js';
import { XattrPathError } from '../../../src/platform/xattr-ops.js';
import { needs } from '../../helpers/requirements.js';

const built = fileURLToPath(new URL('../../../dist/native/ferry-fs.node', import.meta.url));
const env = needs({ files: [built, '/dev/shm'], tools: ['setfattr', 'setfacl', 'cc'] });

describe.runIf(env.ok)('native xattrs', () => {
  let dir: string;
  let shm: string;
  let xattrs: NativeXattrs;
  const p = (name: string) => Buffer.from(name === 'big' ? join(shm, name) : join(dir, name));

  beforeAll(() => {
    xattrs = loadNativeFs(built)!.xattrs;
    dir = mkdtempSync(join(tmpdir(), 'ferry-xattrs-'));
    writeFileSync(join(dir, 'plain'), 'x');
    writeFileSync(join(dir, 'tagged'), 'x');
    execFileSync('setfattr', ['-n', 'user.zeta', '-v', '0x00010aff', join(dir, 'tagged')]);
    execFileSync('setfattr', ['-n', 'user.alpha', '-v', '', join(dir, 'tagged')]);
    execFileSync('setfattr', ['-n', 'user.B', '-v', 'upper', join(dir, 'tagged')]);
    writeFileSync(join(dir, 'acl'), 'x');
    execFileSync('setfacl', ['-m', 'u:nobody:r', join(dir, 'acl')]);
    mkdirSync(join(dir, 'sub'));
    execFileSync('setfacl', ['-d', '-m', 'u:nobody:rx', join(dir, 'sub')]);
    symlinkSync('tagged', join(dir, 'link'));
    // 180 names of 40 bytes (7,380 bytes of list) and one value of 6,000 bytes: past the first 4 KiB buffers.
    shm = mkdtempSync('/dev/shm/ferry-xattrs-');
    const big = join(shm, 'big');
    writeFileSync(big, 'x');
    const cmds: string[] = [];
    for (let i = 0; i < 180; i++) cmds.push(`setfattr -n user.${String(i).padStart(3, '0')}-${'n'.repeat(31)} -v ${i} ${big}`);
    execFileSync('sh', ['-c', cmds.join(' && ')]);
    execFileSync('setfattr', ['-n', 'user.large', '-v', `0x${'ab'.repeat(6000)}`, big]);
    writeFileSync(Buffer.from(`${dir}/raw-\xff`, 'latin1'), 'x');
    // An xattr name that is not UTF-8 (bash's $'…' gives the raw bytes).
    writeFileSync(join(dir, 'raw-name'), 'x');
    execFileSync('bash', ['-c', `setfattr -n $'user.\\xff\\xfebad' -v x raw-name`], { cwd: dir });
    // Arguments go out as UTF-8: the raw name is reached by a glob.
    execFileSync('sh', ['-c', 'setfattr -n user.raw -v yes raw-*'], { cwd: dir });
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  });

  it('reads what the library reads, sorted the same, by path and by fd', () => {
    for (const name of ['plain', 'tagged', 'acl', 'sub', 'link', 'big']) {
      const lib = readXattrsWithLibrary(p(name));
      const nat = readXattrsNative(xattrs, p(name));
      expect([...nat.keys()], name).toEqual([...lib.keys()]);
      for (const [k, v] of lib) expect(nat.get(k)!.equals(v), `${name} ${k}`).toBe(true);
      if (name !== 'link') {
        const fd = openSync(p(name), 'r');
        try {
          const byFd = readXattrsNative((t) => xattrs(typeof t === 'number' ? t : fd), Buffer.from('-'));
          expect([...byFd.keys()], name).toEqual([...lib.keys()]);
          for (const [k, v] of lib) expect(byFd.get(k)!.equals(v), `${name} ${k} by fd`).toBe(true);
        } finally {
          closeSync(fd);
        }
      }
    }
    expect(xattrs(p('plain'))).toBeNull();
    // Names alone: the same names, no value read.
    expect(xattrs(p('tagged'), true)).toEqual(xattrs(p('tagged'))!.map((x, i) => (i % 2 === 0 ? x : null)));
    const tagged = readXattrs(p('tagged'));
    expect([...tagged.keys()]).toEqual(['user.B', 'user.alpha', 'user.zeta']);
    expect(tagged.get('user.alpha')!.length).toBe(0);
    expect([...tagged.get('user.zeta')!]).toEqual([0, 1, 0x0a, 0xff]);
    expect([...readXattrs(p('acl')).keys()]).toEqual(['system.posix_acl_access']);
    expect([...readXattrs(p('sub')).keys()]).toEqual(['system.posix_acl_default']);
    // The symlink's own xattrs (none: Linux allows no user.* on a symlink), not its target's.
    expect(readXattrs(p('link')).size).toBe(0);
    const big = readXattrs(p('big'));
    expect(big.size).toBe(181);
    expect(big.get('user.large')!.equals(Buffer.alloc(6000, 0xab))).toBe(true);
  });

  it('reaches a name that is not UTF-8, which the library cannot', () => {
    const raw = Buffer.from(`${dir}/raw-\xff`, 'latin1');
    expect(() => readXattrsWithLibrary(raw)).toThrow(XattrPathError);
    expect([...readXattrs(raw)]).toEqual([['user.raw', Buffer.from('yes')]]);
  });

  it('refuses an xattr name that is not UTF-8, as the library does (never a renamed or merged one)', () => {
    expect(() => readXattrsWithLibrary(p('raw-name'))).toThrow();
    expect(() => readXattrs(p('raw-name'))).toThrow(XattrPathError);
    expect(() => readXattrs(p('raw-name'))).toThrow('an xattr name is not UTF-8 (hex 757365722efffe626164)');
    // The receiver cannot make such an entry's xattrs exactly the stream's: it says so, by throwing.
    expect(() => writeXattrs(p('raw-name'), new Map([['user.a', Buffer.from('1')]]))).toThrow(XattrPathError);
  });

  it('reads a value that changes size between its calls: grown twice, or emptied (never more bytes than it holds)', () => {
    // A stand-in C library for the xattr calls (LD_PRELOAD in a child node): user.grow answers ERANGE twice,
    // each time larger; user.emptied is over the first buffer, then empty, then would be 5,000 bytes again.
    const shim = join(dir, 'shim.c');
    writeFileSync(
      shim,
      `#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/types.h>
static int grow, emptied;
ssize_t lgetxattr(const char *p, const char *n, void *v, size_t s) {
  (void)p;
  if (strcmp(n, "user.grow") == 0) {
    size_t want = 5000 + 1000 * (size_t)(grow < 2 ? grow : 2);
    grow++;
    if (s == 0) return (ssize_t)want;
    if (s < want) { errno = ERANGE; return -1; }
    memset(v, 'g', want);
    return (ssize_t)want;
  }
  if (strcmp(n, "user.emptied") == 0) {
    emptied++;
    if (emptied == 1) { errno = ERANGE; return -1; }
    if (emptied == 2) return 0;
    return 5000;
  }
  errno = ENODATA;
  return -1;
}
ssize_t llistxattr(const char *p, char *l, size_t s) {
  static const char names[] = "user.grow\0user.emptied";
  (void)p;
  if (s == 0) return sizeof names;
  if (s < sizeof names) { errno = ERANGE; return -1; }
  memcpy(l, names, sizeof names);
  return sizeof names;
}
`,
    );
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(dir, 'shim.so'), shim]);
    const script = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(built)});
      const r = m.exports.xattrs(Buffer.from('/'));
      process.stdout.write(JSON.stringify([r[0], r[1].length, r[1].every((b) => b === 0x67), r[2], r[3].length]));`;
    const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, LD_PRELOAD: join(dir, 'shim.so') }, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(['user.grow', 7000, true, 'user.emptied', 0]);
  });

  it('fails as node:fs does', () => {
    const err = (target: number | Buffer) => {
      try {
        xattrs(target);
        return 'read';
      } catch (e) {
        return `${(e as NodeJS.ErrnoException).code} ${(e as NodeJS.ErrnoException).errno} ${(e as Error).message}`;
      }
    };
    expect(err(p('nope'))).toBe(`ENOENT -2 ENOENT: no such file or directory, llistxattr '${join(dir, 'nope')}'`);
    expect(err(Buffer.from(`/${'n'.repeat(250)}`.repeat(17)))).toMatch(/^ENAMETOOLONG -36 /);
    expect(err(p('plain/x'))).toMatch(/^ENOTDIR /);
    const fd = openSync(p('plain'), 'r');
    closeSync(fd);
    expect(err(fd)).toMatch(/^EBADF -9 EBADF: bad file descriptor, flistxattr 'fd \d+'$/);
    expect(() => xattrs('text' as unknown as Buffer)).toThrow(TypeError);
    expect(() => xattrs(Buffer.from(''))).toThrow(TypeError);
    expect(() => xattrs(Buffer.from('a\0b'))).toThrow(TypeError);
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32]) expect(() => xattrs(bad), String(bad)).toThrow(TypeError);
  });

  it('writeXattrs sets, removes and leaves alone', () => {
    writeFileSync(join(dir, 'w'), 'x');
    writeXattrs(p('w'), new Map([['user.one', Buffer.from('1')], ['user.two', Buffer.from([0, 2])]]));
    expect([...readXattrsWithLibrary(p('w'))]).toEqual([['user.one', Buffer.from('1')], ['user.two', Buffer.from([0, 2])]]);
    writeXattrs(p('w'), new Map([['user.two', Buffer.from([0, 3])]]));
    expect([...readXattrsWithLibrary(p('w'))]).toEqual([['user.two', Buffer.from([0, 3])]]);
    // Nothing to change: not even the library is called, so a path it cannot take as text is no error.
    const raw = Buffer.from(`${dir}/raw-\xff`, 'latin1');
    expect(() => writeXattrs(raw, new Map([['user.raw', Buffer.from('yes')]]))).not.toThrow();
    writeXattrs(p('w'), undefined);
    expect(readXattrs(p('w')).size).toBe(0);
  });
});
