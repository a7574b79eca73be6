// Hostile tar input against the receiver's extractor: every trick to write
// outside the target root is refused with an error naming the entry, and
// nothing appears outside the root. Streams are built both with ferry's
// own encoder and with tar-stream (an independent implementation).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tarStream from 'tar-stream';
import { FileExtractor } from '../../src/receiver/file-extractor.js';
import { encodeHeader, ZERO_BLOCKS, bodyPadding, type TarHeader } from '../../src/protocol/tar-format.js';

let base: string;
let root: string;
let outside: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'ferry-hostile-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, 'precious'), 'keep me');
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

const B = (s: string) => Buffer.from(s);
const h = (path: string | Buffer, extra: Partial<TarHeader> = {}): TarHeader => ({
  path: Buffer.isBuffer(path) ? path : B(path), type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtimeNs: 1_600_000_000_000_000_000n, ...extra,
});
function ours(...entries: [TarHeader, string?][]): Buffer {
  const parts: Buffer[] = [];
  for (const [hd, body = ''] of entries) {
    const b = B(body);
    parts.push(encodeHeader({ ...hd, size: hd.type === 'file' ? b.length : 0 }), b, bodyPadding(b.length));
  }
  parts.push(ZERO_BLOCKS);
  return Buffer.concat(parts);
}
async function* chunks(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}
async function viaTarStream(build: (p: tarStream.Pack) => void): Promise<Buffer> {
  const pack = tarStream.pack();
  const out: Buffer[] = [];
  pack.on('data', (d: unknown) => {
    out.push(d as Buffer);
  });
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  build(pack);
  pack.finalize();
  await done;
  return Buffer.concat(out);
}
const extract = (tar: Buffer) => new FileExtractor({ root }).extract(chunks(tar));

/** Nothing outside the root changed: only 'precious' there, unchanged. */
function outsideUntouched(): void {
  expect(readdirSync(outside)).toEqual(['precious']);
  expect(readdirSync(base).sort()).toEqual(['outside', 'root']);
}
/** And no temporary file was left in the root. */
function noTemporaries(dir = root): void {
  for (const n of readdirSync(dir)) {
    expect(n.startsWith('.ferry-tmp-')).toBe(false);
    const p = join(dir, n);
    if (lstatSync(p).isDirectory()) noTemporaries(p);
  }
}

describe('the extractor refuses entries that would escape the target root', () => {
  it('refuses ../ components (tar-stream built)', async () => {
    const tar = await viaTarStream((p) => p.entry({ name: '../outside/evil', size: 4 }, 'evil'));
    await expect(extract(tar)).rejects.toThrow(/refused tar entry "\.\.\/outside\/evil": '\.\.' component/);
    outsideUntouched();
  });
  it('refuses .. in the middle of a path', async () => {
    await expect(extract(ours([h('a/../../outside/evil'), 'x']))).rejects.toThrow(/"a\/\.\.\/\.\.\/outside\/evil".*'\.\.'/);
    outsideUntouched();
  });
  it('refuses absolute paths', async () => {
    const tar = await viaTarStream((p) => p.entry({ name: join(outside, 'abs'), size: 1 }, 'x'));
    await expect(extract(tar)).rejects.toThrow(/refused tar entry ".*outside\/abs": absolute path/);
    outsideUntouched();
  });
  it('refuses a file written through a symlink the same stream planted', async () => {
    const tar = ours([h('a', { type: 'symlink', linkpath: B(outside) })], [h('a/evil'), 'pwned']);
    await expect(extract(tar)).rejects.toThrow(/refused tar entry "a\/evil": path passes through the symlink "a"/);
    outsideUntouched();
    expect(lstatSync(join(root, 'a')).isSymbolicLink()).toBe(true); // the symlink itself is fine
  });
  it('refuses a path through a symlink that was already in the target', async () => {
    mkdirSync(join(root, 'd'));
    symlinkSync(outside, join(root, 'd/escape'));
    await expect(extract(ours([h('d/escape/precious'), 'overwritten']))).rejects.toThrow(/passes through the symlink "d\/escape"/);
    outsideUntouched();
  });
  it('replaces a symlink by a file rather than writing through it', async () => {
    symlinkSync(join(outside, 'precious'), join(root, 'victim'));
    await extract(ours([h('victim'), 'new content']));
    expect(lstatSync(join(root, 'victim')).isFile()).toBe(true);
    outsideUntouched();
  });
  it('refuses hard links whose target lies outside the root', async () => {
    const tar = await viaTarStream((p) => p.entry({ name: 'hl', type: 'link', linkname: '../outside/precious' }));
    await expect(extract(tar)).rejects.toThrow(/refused tar entry "\.\.\/outside\/precious": '\.\.' component/);
    expect(existsSync(join(root, 'hl'))).toBe(false);
    outsideUntouched();
  });
  it('refuses a delete that climbs out', async () => {
    await expect(extract(ours([h('../outside/precious', { ferry: { op: 'delete' } })]))).rejects.toThrow(/'\.\.' component/);
    outsideUntouched();
  });
  it('refuses oversized pax headers and over-long paths, naming the entry', async () => {
    const huge = encodeHeader(h('bomb', { ferry: { pad: 'x'.repeat(2 << 20) } }));
    await expect(extract(Buffer.concat([huge, ZERO_BLOCKS]))).rejects.toThrow(/entry #0 \(".*bomb"\): pax header of \d+ bytes exceeds the 1048576-byte limit/);
    const long = 'd/'.repeat(2100) + 'f';
    await expect(extract(ours([h(long), 'x']))).rejects.toThrow(/path of \d+ bytes exceeds the 4096-byte limit/);
    outsideUntouched();
  });
  it('refuses a stream cut inside a body and leaves no half-written file under a real name', async () => {
    const full = ours([h('ok'), 'fine'], [h('big'), 'y'.repeat(5000)]);
    await expect(extract(full.subarray(0, 6000))).rejects.toThrow(/entry #1 .*stream ends inside its body/);
    expect(existsSync(join(root, 'ok'))).toBe(true);
    expect(existsSync(join(root, 'big'))).toBe(false);
    noTemporaries();
  });
  it('refuses NUL bytes, empty components and non-directory entries at the root', async () => {
    await expect(extract(ours([h(Buffer.from('a\0b')), 'x']))).rejects.toThrow(/NUL byte/);
    await expect(extract(ours([h('a//b'), 'x']))).rejects.toThrow(/empty path component/);
    await expect(extract(ours([h('.'), 'x']))).rejects.toThrow(/the root can only be a directory/);
    outsideUntouched();
  });
});
