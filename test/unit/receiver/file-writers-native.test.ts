// The receiver's writer thread writes a batch of small new files through the
// native module's writeFiles (src/native/ferry-fs.c) where it loads, else
// through node:fs (src/receiver/file-writers.ts). The two must be the same:
// each batch below is written by both bodies into twin directories, and the
// trees (names, types, modes, owners, sizes, mtimes to the nanosecond,
// contents) and the results (files done, the failing file, the error's
// message and code) are compared. Covered: created modes, chmod, chown
// (root), a fractional mtime, a truncate past the body (sparse end), an
// empty body; a final name held by a symlink to a file outside (replaced by
// a rename, never written through); a file whose directory is missing (the
// batch stops there: the files before it in place, none after it, no
// temporary file); a final name and a temporary name both taken (the error
// names the temporary one); fields out of range (a TypeError, nothing
// written).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileWriterBody } from '../../../src/receiver/file-writers.js';
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
  mtime?: number;
  truncate?: number;
}

/** A batch as BatchWriter makes one: paths (temporary, final) and bodies in one buffer, 12 numbers a file. */
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
    fields.push(...tmp, ...dst, ...data, f.createMode ?? 0o644, f.chmod ?? -1, f.owner?.[0] ?? -1, f.owner?.[1] ?? -1, f.mtime ?? 1_600_000_000, f.truncate ?? -1);
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
  function both(files: File[], prepare: (dir: string) => void = () => {}) {
    const results = [];
    for (const [dir, handle] of [[native, nativeBody()], [plain, plainBody()]] as const) {
      mkdirSync(dir);
      prepare(dir);
      const r = handle(batch(dir, files));
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
      { dst: 'b', body: Buffer.alloc(70_000, 'b'), createMode: 0o600, chmod: 0o4755, owner: [1234, 2345], mtime: 1_234_567_890.123456789 },
      { dst: 'c', body: Buffer.from('0123456789'), truncate: 1 << 20, mtime: -12.75 },
      { dst: 'd', createMode: 0o600, chmod: 0o2640, owner: [0, 3456] },
    ];
    const [n, p] = both(files);
    expect(n).toEqual({ done: 4, error: undefined });
    expect(p).toEqual(n);
    const t = tree(native);
    expect(t).toEqual(tree(plain));
    expect(t['b']).toMatch(/^104755 1234:2345 70000 1234567890123456000 /);
    expect(t['c']).toMatch(/^100644 0:0 1048576 -12750000000 /);
    expect(t['d']).toMatch(/^102640 0:3456 0 /);
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
    const write = loadNativeFs(built)!.writeFiles;
    const good = () => batch(native, [{ dst: 'f', body: Buffer.from('x') }, { dst: 'g', body: Buffer.from('y') }]);
    const cases: [number, number][] = [
      [12 + 4, 1e9], // a body outside the buffer
      [12 + 5, -1], // a negative length
      [12 + 6, 0o10000], // a create mode past 07777
      [12 + 8, 1.5], // an owner not whole
      [12 + 8, 5], // an owner without a group
    ];
    for (const [at, v] of cases) {
      const b = good();
      b.files[at] = v;
      expect(() => write(b.buf, b.files, false)).toThrow(TypeError);
    }
    const b = good();
    expect(() => write(b.buf, b.files.subarray(0, 13), false)).toThrow(TypeError);
    expect(readdirSync(native)).toEqual([]);
    expect(Array.from(write(b.buf, b.files, false))).toEqual([2, -1, 0, 0]);
  });
});
