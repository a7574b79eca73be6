// The native lister (src/native/ferry-fs.c, built by `npm run build`) on a
// real directory: every entry but . and .., sorted bytewise, each with the
// lstat node:fs gives (field by field) and, for symlinks, the target
// (raw bytes, 4,095 bytes long); many entries (more than one
// getdents64 buffer); raw-byte names; node:fs-like errors for a missing
// directory, a file, a path over PATH_MAX and a symlink in a directory's
// place (followed only when asked: the walk's root).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNativeFs, nativeFsPath, NATIVE_STAT_FIELDS, type NativeListdir } from '../../../src/platform/native-fs.js';
import { needs } from '../../helpers/requirements.js';

const built = fileURLToPath(new URL('../../../dist/native/ferry-fs.node', import.meta.url));
const env = needs({ files: [built], tools: ['mkfifo'] });

describe.runIf(env.ok)('native lister', () => {
  let dir: string;
  let listdir: NativeListdir;

  beforeAll(() => {
    listdir = loadNativeFs(built)!.listdir;
    dir = mkdtempSync(join(tmpdir(), 'ferry-native-'));
    writeFileSync(join(dir, 'file'), 'abc');
    mkdirSync(join(dir, 'sub'));
    symlinkSync('file', join(dir, 'link'));
    // Targets of raw bytes and of the longest length Linux takes (4095 bytes).
    symlinkSync(Buffer.from('raw-\xff-target', 'latin1'), join(dir, 'link-raw'));
    symlinkSync(`/${'t'.repeat(4094)}`, join(dir, 'link-long'));
    linkSync(join(dir, 'file'), join(dir, 'hard'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    writeFileSync(Buffer.from(`${dir}/raw-\xff\x25\x0a`, 'latin1'), '');
    writeFileSync(join(dir, 'B-upper'), '');
    writeFileSync(join(dir, 'a-lower'), '');
    // 3,000 names of 40 bytes: about 170 KB of dirents, several getdents64 calls.
    mkdirSync(join(dir, 'many'));
    for (let i = 0; i < 3000; i++) writeFileSync(join(dir, 'many', `entry-${String(i).padStart(6, '0')}-${'x'.repeat(27)}`), '');
    mkdirSync(join(dir, 'empty'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is found and loads where the build put it', () => {
    expect(listdir).toBeTypeOf('function');
    expect(nativeFsPath()).toBe(built);
  });

  it('gives every entry, sorted bytewise, with the lstat node:fs gives', () => {
    const [joined, stats, targets] = listdir(Buffer.from(dir));
    const names = joined.split('\0');
    const want = readdirSync(dir, { encoding: 'latin1' }).sort();
    // Each symlink's target, in the names' order, byte for byte.
    const links = names.filter((n) => lstatSync(Buffer.from(`${dir}/${n}`, 'latin1')).isSymbolicLink());
    expect(links).toEqual(['link', 'link-long', 'link-raw']);
    expect(targets!.split('\0')).toEqual(links.map((n) => readlinkSync(Buffer.from(`${dir}/${n}`, 'latin1'), { encoding: 'latin1' })));
    expect(targets!.split('\0')[1]).toHaveLength(4095);
    expect(names).toEqual(want);
    expect(names).toContain('raw-\xff\x25\x0a');
    expect(names.indexOf('B-upper')).toBeLessThan(names.indexOf('a-lower'));
    expect(stats.length).toBe(names.length * NATIVE_STAT_FIELDS);
    names.forEach((n, i) => {
      const a = stats.subarray(i * NATIVE_STAT_FIELDS, (i + 1) * NATIVE_STAT_FIELDS);
      const s = lstatSync(Buffer.from(`${dir}/${n}`, 'latin1'), { bigint: true });
      expect([a[0], a[1], a[2], a[3], a[4], a[5], a[7], a[8], a[9]].map(BigInt), n).toEqual([s.dev, s.mode, s.nlink, s.uid, s.gid, s.rdev, s.ino, s.size, s.blocks]);
      expect(a[6]!, n).toBeGreaterThan(0);
      expect(BigInt(a[12]!) * 1000000000n + BigInt(a[13]!), n).toBe(s.mtimeNs);
      expect(BigInt(a[14]!) * 1000000000n + BigInt(a[15]!), n).toBe(s.ctimeNs);
    });
  });

  it('lists a directory larger than one getdents64 buffer, and an empty one', () => {
    const [joined, stats] = listdir(Buffer.from(join(dir, 'many')));
    const names = joined.split('\0');
    expect(names).toHaveLength(3000);
    expect(names).toEqual([...names].sort());
    expect(stats.length).toBe(3000 * NATIVE_STAT_FIELDS);
    expect(listdir(Buffer.from(join(dir, 'empty')))).toEqual(['', new Float64Array(0), '']);
  });

  it("fails as node:fs does: a missing directory, a file, a symlink in a directory's place (not followed)", () => {
    const code = (p: string) => {
      try {
        listdir(Buffer.from(p));
        return 'listed';
      } catch (e) {
        return `${(e as NodeJS.ErrnoException).code} ${(e as Error).message}`;
      }
    };
    // node:fs's own words: libuv's error name and text, the path as given.
    expect(code(`${join(dir, 'nope')}/`)).toBe(`ENOENT ENOENT: no such file or directory, scandir '${join(dir, 'nope')}/'`);
    let nodeFs = '';
    try {
      readdirSync(`${join(dir, 'nope')}/`);
    } catch (e) {
      nodeFs = `${(e as NodeJS.ErrnoException).code} ${(e as Error).message}`;
    }
    expect(code(`${join(dir, 'nope')}/`)).toBe(nodeFs);
    expect(code(join(dir, 'file'))).toMatch(/^ENOTDIR /);
    symlinkSync('sub', join(dir, 'link-to-dir'));
    expect(code(join(dir, 'link-to-dir'))).toMatch(/^(ELOOP|ENOTDIR) /);
    // The walker names directories with a trailing slash: still not followed.
    expect(code(`${join(dir, 'link-to-dir')}/`)).toMatch(/^(ELOOP|ENOTDIR) /);
    expect(listdir(Buffer.from(`${join(dir, 'sub')}/`))).toEqual(['', new Float64Array(0), '']);
    // The walk's root may be a symlink the operator named: with follow it is listed.
    expect(listdir(Buffer.from(`${join(dir, 'link-to-dir')}/`), true)).toEqual(['', new Float64Array(0), '']);
    expect(code(`/${'n'.repeat(250)}/`.repeat(17))).toMatch(/^ENAMETOOLONG /);
    expect(() => listdir('not a buffer' as unknown as Buffer)).toThrow(TypeError);
    expect(() => listdir(Buffer.from(''))).toThrow(TypeError);
  });

  it('is not used with FERRY_NATIVE=0', () => {
    const was = process.env.FERRY_NATIVE;
    process.env.FERRY_NATIVE = '0';
    try {
      expect(nativeFsPath()).toBeNull();
    } finally {
      if (was === undefined) delete process.env.FERRY_NATIVE;
      else process.env.FERRY_NATIVE = was;
    }
  });
});
