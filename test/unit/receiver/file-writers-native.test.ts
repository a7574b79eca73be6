// The receiver's writer thread writes a batch of small new files through the
// native module's writeFiles (src/native/ferry-fs.c) where it loads, else
// through node:fs (src/receiver/file-writers.ts). The two must be the same:
// each batch below is written by both bodies into twin directories, and the
// trees (names, types, modes, owners, sizes, mtimes to the nanosecond,
// contents) and the results (files done, the failing file, the error's
// message and code) are compared, and no descriptor may stay open. Covered:
// created modes, chmod, chown (root; an owner without a group, a group
// without an owner), a fractional mtime, times before 1970, a truncate past
// the body (sparse end), an empty body, flushOnClose; a final name held by a
// symlink to a file outside (replaced by a rename, never written through); a
// file whose directory is missing (the batch stops there: the files before
// it in place, none after it, no temporary file); a failure after the file
// was made (a rename over a directory, a truncate too large), which removes
// it and nothing else; a final name and a temporary name both taken (the
// error names the temporary one); fields out of range (a TypeError, nothing
// written).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileWriterBody, mtimeParts } from '../../../src/receiver/file-writers.js';
import { handlerHere } from '../../../src/platform/worker-pool.js';
import { loadNativeFs } from '../../../src/platform/native-fs.js';
import { needs } from '../../helpers/requirements.js';

const built = fileURLToPath(new URL('../../../dist/native/ferry-fs.node', import.meta.url));
const env = needs({ root: true, files: [built] });
const FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

interface File {
  dst: string;
  body?: Buffer;
  createMode?: number;
  chmod?: number;
  owner?: [number, number];
  /** ns since 1970 */
  mtime?: bigint;
  truncate?: number;
}

/** A batch as BatchWriter makes one: paths (temporary, final) and bodies in one buffer, 13 numbers a file (its mtime split by BatchWriter's own mtimeParts). */
function batch(dir: string, files: File[]): { buf: ArrayBuffer; files: Float64Array; flushOnClose: boolean } {
  const parts: Buffer[] = [];
  const fields: number[] = [];
  let at = 0;
  const put = (b: Buffer) => {
    parts.push(b);
    const off = at;
    at += b.length;
    return [off, b.length];
  };
  for (const f of files) {
    const tmp = put(Buffer.from(join(dir, `${f.dst}.ferry-tmp`)));
    const dst = put(Buffer.from(join(dir, f.dst)));
    const data = put(f.body ?? Buffer.alloc(0));
    fields.push(...tmp, ...dst, ...data, f.createMode ?? 0o644, f.chmod ?? -1, f.owner?.[0] ?? -1, f.owner?.[1] ?? -1, ...mtimeParts(f.mtime ?? 1_600_000_000_000_000_000n), f.truncate ?? -1);
  }
  const all = Buffer.concat(parts);
  const buf = new ArrayBuffer(Math.max(1, all.length));
  all.copy(Buffer.from(buf));
  return { buf, files: Float64Array.from(fields), flushOnClose: false };
}

/** Every entry below dir: type, mode, owner, size, mtime (ns), content (its sha1's start) or target. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = join(dir, rel, name);
      const st = lstatSync(p, { bigint: true });
      const what = st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isDirectory() ? 'dir' : createHash('sha1').update(readFileSync(p)).digest('hex').slice(0, 16);
      out[join(rel, name)] = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${what}`;
      if (st.isDirectory()) walk(join(rel, name));
    }
  };
  walk('');
  return out;
}

describe.runIf(env.ok)('the writer thread, native and node:fs', () => {
  let root: string;
  let native: string;
  let plain: string;
  const nativeBody = () => handlerHere(fileWriterBody, { flags: FLAGS, native: built });
  const plainBody = () => handlerHere(fileWriterBody, { flags: FLAGS });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'ferry-writefiles-'));
    native = join(root, 'native');
    plain = join(root, 'plain');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** The same batch through both bodies (each dir prepared by `prepare`): both results, messages with the dir made generic. */
  function both(files: File[], prepare: (dir: string) => void = () => {}, flushOnClose = false) {
    const results = [];
    for (const [dir, handle] of [[native, nativeBody()], [plain, plainBody()]] as const) {
      mkdirSync(dir);
      prepare(dir);
      const fds = readdirSync('/proc/self/fd').length;
      const r = handle({ ...batch(dir, files), flushOnClose });
      // No descriptor left open, whatever failed.
      expect(readdirSync('/proc/self/fd').length).toBe(fds);
      results.push({ done: r.done, error: r.error && { ...r.error, message: r.error.message.split(dir).join('DIR') } });
    }
    return results;
  }

  it('loads the native writer where the build put it', () => {
    expect(loadNativeFs(built)?.writeFiles).toBeTypeOf('function');
  });

  it('writes modes, owners, a fractional mtime, a truncate past the body and an empty body as node:fs does', () => {
    const files: File[] = [
      { dst: 'a', body: Buffer.from('hello'), createMode: 0o640 },
      { dst: 'b', body: Buffer.alloc(70_000, 'b'), createMode: 0o600, chmod: 0o4755, owner: [1234, 2345], mtime: 1_234_567_890_123_456_789n },
      { dst: 'c', body: Buffer.from('0123456789'), truncate: 1 << 20, mtime: -12_750_000_000n },
      { dst: 'd', createMode: 0o600, chmod: 0o2640, owner: [0, 3456] },
      // An owner without a group (the group left as created), a group without an owner (no chown).
      { dst: 'e', body: Buffer.from('e'), owner: [4321, -1] },
      { dst: 'f', body: Buffer.from('f'), owner: [-1, 4321] },
      // A time whose double falls just below its microsecond: both set that microsecond.
      { dst: 'g', body: Buffer.from('g'), mtime: 1_700_000_000_500_001_000n },
    ];
    const [n, p] = both(files);
    expect(n).toEqual({ done: 7, error: undefined });
    expect(p).toEqual(n);
    const t = tree(native);
    expect(t).toEqual(tree(plain));
    expect(t['b']).toMatch(/^104755 1234:2345 70000 1234567890123456000 /);
    expect(t['c']).toMatch(/^100644 0:0 1048576 -12750000000 /);
    expect(t['d']).toMatch(/^102640 0:3456 0 /);
    expect(t['e']).toMatch(/^100644 4321:0 1 /);
    expect(t['f']).toMatch(/^100644 0:0 1 /);
    expect(t['g']).toMatch(/^100644 0:0 1 1700000000500001000 /);
  });

  it('sets times before 1970 to the microsecond from the exact parts (node:fs: to about the millisecond, as a Date)', () => {
    const times = [-1_001_000_000n, -500_000n, -1_500n, -1_914_530_542_906_123_456n, -1n];
    const [n, p] = both(times.map((mtime, i) => ({ dst: `t${i}`, body: Buffer.from('x'), mtime })));
    expect(n).toEqual({ done: times.length, error: undefined });
    expect(p).toEqual(n);
    const got = (dir: string) => times.map((_t, i) => lstatSync(join(dir, `t${i}`), { bigint: true }).mtimeNs);
    // To the microsecond, rounded down.
    expect(got(native)).toEqual([-1_001_000_000n, -500_000n, -2_000n, -1_914_530_542_906_124_000n, -1_000n]);
    // node:fs: to the millisecond rounded down, give or take the microsecond its seconds (a double) lose.
    const ms = [-1_001_000_000n, -1_000_000n, -1_000_000n, -1_914_530_542_907_000_000n, -1_000_000n];
    got(plain).forEach((t, i) => expect(t - ms[i]! <= 1_000n && ms[i]! - t <= 1_000n).toBe(true));
  });

  it('with flushOnClose, each file with a body is written whole (truncated to 0 first)', () => {
    const files: File[] = [{ dst: 'a', body: Buffer.alloc(5000, 'a') }, { dst: 'empty' }, { dst: 'b', body: Buffer.alloc(100_000, 'b'), truncate: 200_000 }];
    const [n, p] = both(files, () => {}, true);
    expect(n).toEqual({ done: 3, error: undefined });
    expect(p).toEqual(n);
    expect(tree(native)).toEqual(tree(plain));
    expect(readFileSync(join(native, 'b')).subarray(0, 100_000).equals(Buffer.alloc(100_000, 'b'))).toBe(true);
  });

  it('a failure after the file was made removes it, under its final name or its temporary one, and nothing else', () => {
    const prepare = (dir: string) => {
      // A final name held by a directory with something in it: the file is made under its temporary name,
      // and the rename over the directory fails.
      mkdirSync(join(dir, 'held'));
      writeFileSync(join(dir, 'held/inside'), 'keep');
      utimesSync(join(dir, 'held/inside'), 1000, 1000);
      utimesSync(join(dir, 'held'), 1000, 1000);
    };
    const [n, p] = both([{ dst: 'first', body: Buffer.from('1') }, { dst: 'held', body: Buffer.from('x') }, { dst: 'never', body: Buffer.from('3') }], prepare);
    expect(n).toEqual({ done: 1, error: { index: 1, code: 'EISDIR', message: "EISDIR: illegal operation on a directory, rename 'DIR/held.ferry-tmp' -> 'DIR/held'" } });
    expect(p).toEqual(n);
    expect(Object.keys(tree(native)).sort()).toEqual(['first', 'held', 'held/inside']);
    expect(tree(native)).toEqual(tree(plain));
    rmSync(native, { recursive: true });
    rmSync(plain, { recursive: true });
    // A truncate the file system refuses (ext4: at most 16 TiB): the file made under its final name goes.
    const [n2, p2] = both([{ dst: 'ok', body: Buffer.from('1') }, { dst: 'huge', body: Buffer.from('2'), truncate: 2 ** 50 }]);
    expect(n2).toEqual({ done: 1, error: { index: 1, code: 'EFBIG', message: 'EFBIG: file too large, ftruncate' } });
    expect(p2).toEqual(n2);
    expect(Object.keys(tree(native))).toEqual(['ok']);
  });

  it('replaces a symlink holding a final name by a rename, never writing through it', () => {
    const outside = join(root, 'outside');
    writeFileSync(outside, 'keep');
    const [n, p] = both([{ dst: 'x', body: Buffer.from('new') }, { dst: 'y', body: Buffer.from('other') }], (dir) => symlinkSync(outside, join(dir, 'x')));
    expect(n).toEqual({ done: 2, error: undefined });
    expect(p).toEqual(n);
    expect(readFileSync(outside, 'utf8')).toBe('keep');
    expect(tree(native)).toEqual(tree(plain));
    expect(readFileSync(join(native, 'x'), 'utf8')).toBe('new');
    expect(lstatSync(join(native, 'x')).isFile()).toBe(true);
  });

  it('stops at a file whose directory is missing: the files before it in place, none after, no temporary file, node:fs words', () => {
    const [n, p] = both([{ dst: 'one', body: Buffer.from('1') }, { dst: 'gone/two', body: Buffer.from('2') }, { dst: 'three', body: Buffer.from('3') }]);
    expect(n).toEqual({ done: 1, error: { index: 1, code: 'ENOENT', message: "ENOENT: no such file or directory, open 'DIR/gone/two'" } });
    expect(p).toEqual(n);
    expect(Object.keys(tree(native))).toEqual(['one']);
    expect(tree(native)).toEqual(tree(plain));
  });

  it('names the temporary name when it is taken too, and removes nothing it did not make', () => {
    const prepare = (dir: string) => {
      writeFileSync(join(dir, 'z'), 'old');
      writeFileSync(join(dir, 'z.ferry-tmp'), 'someone else');
      for (const n of ['z', 'z.ferry-tmp']) utimesSync(join(dir, n), 1000, 1000);
    };
    const [n, p] = both([{ dst: 'z', body: Buffer.from('new') }], prepare);
    expect(n).toEqual({ done: 0, error: { index: 0, code: 'EEXIST', message: "EEXIST: file already exists, open 'DIR/z.ferry-tmp'" } });
    expect(p).toEqual(n);
    expect(readFileSync(join(native, 'z'), 'utf8')).toBe('old');
    expect(readFileSync(join(native, 'z.ferry-tmp'), 'utf8')).toBe('someone else');
    expect(tree(native)).toEqual(tree(plain));
  });

  it('refuses fields out of range before writing anything', () => {
    mkdirSync(native);
    const write = loadNativeFs(built)!.writeFiles!;
    const good = () => batch(native, [{ dst: 'f', body: Buffer.from('x') }, { dst: 'g', body: Buffer.from('y') }]);
    const cases: [number, number][] = [
      [13 + 4, 1e9], // a body outside the buffer
      [13 + 5, -1], // a negative length
      [13 + 6, 0o10000], // a create mode past 07777
      [13 + 8, 1.5], // an owner not whole
      [13 + 10, NaN], // a time that is no number
      [13 + 11, 1e9], // nanoseconds past a second
      [13 + 11, -1], // negative nanoseconds
    ];
    for (const [at, v] of cases) {
      const b = good();
      b.files[at] = v;
      expect(() => write(b.buf, b.files, false)).toThrow(TypeError);
    }
    const b = good();
    expect(() => write(b.buf, b.files.subarray(0, 14), false)).toThrow(TypeError);
    expect(readdirSync(native)).toEqual([]);
    expect(Array.from(write(b.buf, b.files, false))).toEqual([2, -1, 0, 0]);
  });
});
