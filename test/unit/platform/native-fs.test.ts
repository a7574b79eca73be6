// The native lister (src/native/ferry-fs.c, built by `npm run build`) on a
// real directory: every entry but . and .., sorted bytewise, each with the
// lstat node:fs gives (field by field) and, for symlinks, the target
// (raw bytes, 4,095 bytes long), and each entry's manifest line as
// manifest.ts makes it (times before 1970 and after 2262, no line for a
// socket); many entries (more than one
// getdents64 buffer); raw-byte names; node:fs-like errors for a missing
// directory, a file, a path over PATH_MAX and a symlink in a directory's
// place (followed only when asked: the walk's root).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNativeFs, nativeFsPath, NATIVE_STAT_FIELDS, type NativeListdir } from '../../../src/platform/native-fs.js';
import { escapeField } from '../../../src/protocol/paths.js';
import { manifestLine } from '../../../src/replication/file/manifest.js';
import { needs } from '../../helpers/requirements.js';
import { setAttributeSync } from '@napi-rs/xattr';

const built = fileURLToPath(new URL('../../../dist/native/ferry-fs.node', import.meta.url));
const env = needs({ files: [built], tools: ['mkfifo', 'cc', 'objdump'] });

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
    // Times the manifest writes as nanosecond counts: before 1970, at 0 s, past 2^63 ns (after 2262).
    mkdirSync(join(dir, 'times'));
    for (const [n, when] of [['old', '1960-01-01 00:00:00.25 UTC'], ['epoch', '1970-01-01 00:00:00.5 UTC'], ['far', '2400-06-01 UTC']]) {
      writeFileSync(join(dir, 'times', n!), 'x');
      execFileSync('touch', ['-h', '-d', when!, join(dir, 'times', n!)]);
    }
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

  it("makes each entry's manifest line as manifest.ts does, with the prefix given; none for a socket", async () => {
    const sock = join(dir, 'times', 'sock');
    const server = createServer().listen(sock);
    await new Promise((r) => server.once('listening', r));
    try {
      for (const sub of ['', 'times']) {
        const at = sub === '' ? dir : join(dir, sub);
        const prefix = sub === '' ? '' : 'pre%25fix/';
        const [joined, , , lines] = listdir(Buffer.from(at), false, Buffer.from(prefix, 'latin1'));
        const names = joined.split('\0');
        expect(lines!.split('\n')).toHaveLength(names.length);
        const want = names.map((n) => {
          const p = Buffer.from(`${at}/${n}`, 'latin1');
          const st = lstatSync(p, { bigint: true });
          if (st.isSocket()) return '';
          const type = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFIFO() ? 'p' : st.isCharacterDevice() ? 'c' : 'b';
          const target = type === 'l' ? escapeField(readlinkSync(p, { encoding: 'buffer' })) : '-';
          const size = type === 'f' ? Number(st.size) : 0;
          return manifestLine(prefix + escapeField(Buffer.from(n, 'latin1')), type, size, st.mtimeNs, st.ctimeNs, Number(st.mode) & 0o7777, st.uid, st.gid, st.dev, st.ino, st.nlink, st.rdev, Number(st.blocks) * 512, target);
        });
        expect(lines!.split('\n')).toEqual(want);
      }
      const times = listdir(Buffer.from(join(dir, 'times')), false, Buffer.alloc(0))[3]!.split('\n');
      // mtimes of epoch, far, old (sorted), none for sock: 0.5 s; 2400-06-01; 1960-01-01 plus 0.25 s.
      expect(times.map((l) => l.split('\t')[3])).toEqual(['500000000', '13582598400000000000', '-315619199750000000', undefined]);
      // Without a prefix, no lines.
      expect(listdir(Buffer.from(join(dir, 'times')))).toHaveLength(3);
    } finally {
      server.close();
    }
  });

  /** An ArrayBuffer transferred away (detached: length 0). */
  const detached = (): ArrayBuffer => {
    const gone = new ArrayBuffer(16);
    structuredClone(gone, { transfer: [gone] });
    return gone;
  };

  it('readFiles reads a batch into its buffer, and refuses one that would not fit or does not add up', async () => {
    const { readFiles } = loadNativeFs(built)!;
    const file = join(dir, 'file');
    const buffer = new ArrayBuffer(16);
    const fifo = join(dir, 'fifo');
    const r = await readFiles(Buffer.from(`${file}\0${file}\0${join(dir, 'nope')}\0${fifo}\0`), Float64Array.from([3, 3, 1, 1]), buffer, 0);
    expect(Buffer.from(buffer, 0, 8).toString('latin1')).toBe('abc\0abc\0');
    // Status, bytes read, regular file, inode and size in halves, mtime and ctime, where it failed.
    const st = lstatSync(file, { bigint: true });
    // … and the device in halves (with the inode, which file was read).
    expect(Array.from(r.subarray(0, 14))).toEqual([
      0, 3, 1, Number(st.ino >> 32n), Number(st.ino & 0xffffffffn), 0, 3,
      Number(st.mtimeNs / 1000000000n), Number(st.mtimeNs % 1000000000n), Number(st.ctimeNs / 1000000000n), Number(st.ctimeNs % 1000000000n), 0,
      Number(st.dev >> 32n), Number(st.dev & 0xffffffffn),
    ]);
    expect([r[28], r[39]]).toEqual([-2, 0]); // ENOENT at open
    // The FIFO (no writer): opened without waiting, not a regular file, not read.
    expect([r[42], r[43], r[44]]).toEqual([0, 0, 0]);
    const refused = [
      [Buffer.from(`${file}\0`), Float64Array.from([3, 3]), new ArrayBuffer(16)], // fewer paths than sizes
      [Buffer.from(`${file}\0${file}\0`), Float64Array.from([3]), new ArrayBuffer(16)], // more
      [Buffer.from(`${file}`), Float64Array.from([3]), new ArrayBuffer(16)], // no NUL at the end
      [Buffer.from(`\0${file}\0`), Float64Array.from([0, 3]), new ArrayBuffer(16)], // an empty path
      [Buffer.from(`${file}\0`), Float64Array.from([1.5]), new ArrayBuffer(16)], // not a whole size
      [Buffer.from(`${file}\0`), Float64Array.from([-1]), new ArrayBuffer(16)],
      [Buffer.from(`${file}\0`), Float64Array.from([16]), new ArrayBuffer(16)], // size + 1 does not fit
      [Buffer.from(''), new Float64Array(0), new ArrayBuffer(16)], // nothing to read
      [Buffer.from(`${file}\0`), Float64Array.from([2 ** 30 + 1]), new ArrayBuffer(16)], // not a small file
      [Buffer.from(`${file}\0`), Float64Array.from([3]), detached()], // no room at all
    ] as const;
    for (const [paths, sizes, buf] of refused) expect(() => readFiles(paths, sizes, buf, 0), `${paths.toString()} ${String(sizes)}`).toThrow(TypeError);
    expect(() => readFiles(Buffer.from(`${file}\0`), [3] as unknown as Float64Array, new ArrayBuffer(16), 0)).toThrow(TypeError);
    expect(() => readFiles(Buffer.from(`${file}\0`), Float64Array.from([3]), new ArrayBuffer(16), 0, 'yes' as unknown as true)).toThrow(TypeError);
  });

  it('readFiles with withXattrs gives each file read its xattrs from its fd, and null for the rest', async () => {
    const { readFiles, xattrs } = loadNativeFs(built)!;
    const tagged = join(dir, 'tagged');
    writeFileSync(tagged, 'xyz');
    setAttributeSync(tagged, 'user.one', Buffer.from('1'));
    setAttributeSync(tagged, 'user.two', Buffer.alloc(0));
    const paths = Buffer.from(`${join(dir, 'file')}\0${tagged}\0${join(dir, 'nope')}\0${join(dir, 'fifo')}\0`);
    const [fields, lists] = await readFiles(paths, Float64Array.from([3, 3, 1, 1]), new ArrayBuffer(16), 0, true);
    expect(fields).toHaveLength(4 * 14);
    expect(Buffer.from((await readFiles(paths, Float64Array.from([3, 3, 1, 1]), new ArrayBuffer(16), 0)).buffer).equals(Buffer.from(fields.buffer))).toBe(true);
    // The kernel's order, as xattrs() by path gives it (an empty value included); nothing for what was not read.
    expect(lists).toEqual([null, xattrs(Buffer.from(tagged)), null, null]);
    expect((lists[1] as unknown[]).filter((_, i) => i % 2 === 0).sort()).toEqual(['user.one', 'user.two']);
  });

  it('listdir with rootLength refuses a symlink anywhere below the root, with openat2 and without it', () => {
    // beneath/a/b/mine; elsewhere/b/secret; then beneath/a becomes a symlink to elsewhere.
    const root = join(dir, 'beneath');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    writeFileSync(join(root, 'a', 'b', 'mine'), '');
    mkdirSync(join(dir, 'elsewhere', 'b'), { recursive: true });
    writeFileSync(join(dir, 'elsewhere', 'b', 'secret'), '');
    symlinkSync(root, join(dir, 'root-link'));
    const rootLength = root.length + 1;
    const target = Buffer.from(`${root}/a/b/`);
    expect(listdir(target, false, undefined, rootLength)[0]).toBe('mine');
    // The root itself may be a symlink the operator named.
    expect(listdir(Buffer.from(`${join(dir, 'root-link')}/a/b/`), false, undefined, join(dir, 'root-link').length + 1)[0]).toBe('mine');
    // Not whole, outside the path, or not ending at a '/' (root.length - 2 would name a root inside a name).
    for (const bad of [0, 1.5, target.length, -1, root.length - 2]) expect(() => listdir(target, false, undefined, bad), String(bad)).toThrow(RangeError);
    expect(listdir(target, false, undefined, root.length)[0]).toBe('mine');
    expect(() => listdir(target, true, undefined, rootLength)).toThrow(RangeError);
    renameSync(join(root, 'a'), join(root, 'a.real'));
    symlinkSync(join(dir, 'elsewhere'), join(root, 'a'));
    // Without rootLength the symlink above the last component is followed (as node:fs follows it).
    expect(listdir(target)[0]).toBe('secret');
    const refused = (fn: () => unknown) => {
      try {
        fn();
        return 'listed';
      } catch (e) {
        return (e as NodeJS.ErrnoException).code;
      }
    };
    expect(refused(() => listdir(target, false, undefined, rootLength))).toMatch(/^(ELOOP|ENOTDIR)$/);
    // openDirBeneath opens a directory the same way (for its xattrs on the fd).
    const { openDirBeneath } = loadNativeFs(built)!;
    const fd = openDirBeneath(Buffer.from(`${root}/a.real/b`), rootLength);
    expect(fstatSync(fd).ino).toBe(lstatSync(join(root, 'a.real', 'b')).ino);
    closeSync(fd);
    expect(refused(() => openDirBeneath(Buffer.from(`${root}/a/b`), rootLength))).toMatch(/^(ELOOP|ENOTDIR)$/);
    expect(() => openDirBeneath(Buffer.from(`${root}/a/b`), root.length - 2)).toThrow(RangeError);
    expect(() => openDirBeneath(Buffer.from(`${root}/a/b`), Number.NaN)).toThrow(RangeError);
    // The same where openat2 is missing (before Linux 5.6): a stand-in syscall() gives ENOSYS for it, and the
    // module opens one component at a time without following any.
    const shim = join(dir, 'no-openat2.c');
    writeFileSync(
      shim,
      `#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
long syscall(long n, ...) {
  static long (*real)(long, ...);
  if (n == 437) { errno = ENOSYS; return -1; }
  if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  va_list ap;
  va_start(ap, n);
  long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long), d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
  va_end(ap);
  return real(n, a, b, c, d, e, f);
}
`,
    );
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(dir, 'no-openat2.so'), shim, '-ldl']);
    const script = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(built)});
      const out = [];
      for (const p of [${JSON.stringify(`${root}/a.real/b/`)}, ${JSON.stringify(`${root}/a/b/`)}]) {
        try { out.push(m.exports.listdir(Buffer.from(p), false, undefined, ${rootLength})[0]); } catch (e) { out.push(e.code); }
      }
      process.stdout.write(JSON.stringify(out));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, LD_PRELOAD: join(dir, 'no-openat2.so') }, encoding: 'utf8' });
    const [listed, swapped] = JSON.parse(out) as string[];
    expect(listed).toBe('mine');
    expect(swapped).toMatch(/^(ELOOP|ENOTDIR)$/);
  });

  it("readFiles gives -errno where a file's xattrs could not be read, and the batch reader leaves those to a read by path", () => {
    // A stand-in C library (LD_PRELOAD in a child node): every fd lists user.fail, whose read fails with EIO.
    const shim = join(dir, 'fail-shim.c');
    writeFileSync(
      shim,
      `#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/types.h>
ssize_t flistxattr(int fd, char *l, size_t s) {
  static const char names[] = "user.fail";
  (void)fd;
  if (s == 0) return sizeof names;
  if (s < sizeof names) { errno = ERANGE; return -1; }
  memcpy(l, names, sizeof names);
  return sizeof names;
}
ssize_t fgetxattr(int fd, const char *n, void *v, size_t s) { (void)fd; (void)n; (void)v; (void)s; errno = EIO; return -1; }
`,
    );
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(dir, 'fail-shim.so'), shim]);
    const reader = new URL('../../../dist/replication/file/small-file-reader.js', import.meta.url).href;
    const file = join(dir, 'file');
    const script = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(built)});
      const [, lists] = await m.exports.readFiles(Buffer.from(${JSON.stringify(`${file}\0`)}), Float64Array.from([3]), new ArrayBuffer(16), 0, true);
      const { nativeBatchReader } = await import(${JSON.stringify(reader)});
      const [r] = await nativeBatchReader(m.exports)({ paths: [${JSON.stringify(file)}], sizes: [3], xattrs: true });
      process.stdout.write(JSON.stringify([lists, r.status, 'xattrs' in r]));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, LD_PRELOAD: join(dir, 'fail-shim.so') }, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual([[-5], 'ok', false]);
  });

  it('needs no glibc symbol newer than 2.14 (old servers load it; liblz4 is found at run time, not linked)', () => {
    const versions = execFileSync('objdump', ['-T', built], { encoding: 'utf8' }).match(/GLIBC_[0-9.]+/g) ?? [];
    const newest = versions.map((v) => v.slice(6).split('.').map(Number)).sort((a, b) => a[0]! - b[0]! || (a[1] ?? 0) - (b[1] ?? 0)).pop()!;
    expect(newest[0]! * 1000 + (newest[1] ?? 0)).toBeLessThanOrEqual(2014);
    expect(execFileSync('objdump', ['-p', built], { encoding: 'utf8' })).not.toMatch(/NEEDED\s+liblz4/);
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
