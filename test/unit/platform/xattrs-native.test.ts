// The native xattr read (src/native/ferry-fs.c `xattrs`, built by `npm run
// build`) against @napi-rs/xattr on real files of this machine's file system:
// the same names and values, sorted alike, for no xattrs, binary and empty
// values, a POSIX ACL, a directory, a symlink (its own, never its target's),
// a list and a value larger than the call's first buffer (on tmpfs: ext4
// keeps at most one block of xattrs an inode); by path and by fd;
// a name that is not UTF-8 (only the native read reaches it); node:fs-like
// errors. Then writeXattrs on its native branch: sets, removes, and leaves
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
const env = needs({ files: [built, '/dev/shm'], tools: ['setfattr', 'setfacl'] });

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
          const byFd = xattrs(fd);
          expect(byFd === null ? 0 : byFd.length / 2, name).toBe(lib.size);
        } finally {
          closeSync(fd);
        }
      }
    }
    expect(xattrs(p('plain'))).toBeNull();
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
    expect(() => xattrs(-1)).toThrow(TypeError);
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
