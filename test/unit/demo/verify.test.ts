// The demo's copy checks: block by sha256, file level by rsync and — when
// rsync is not on PATH — by the node walk that compares the trees itself.
import { cpSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyBlock, verifyFiles } from '../../../src/demo/verify.js';
import { toolOnPath } from '../../helpers/requirements.js';

let dir: string;
const savedPath = process.env.PATH;

function makeTree(root: string): void {
  mkdirSync(join(root, 'd/e'), { recursive: true });
  writeFileSync(join(root, 'd/e/f.txt'), 'hello\n');
  writeFileSync(join(root, 'empty'), '');
  symlinkSync('d/e/f.txt', join(root, 'link'));
  mkdirSync(join(root, 'lost+found'));
}

/**
 * Gives every entry of `dst` the timestamps of its twin in `src`. cpSync
 * keeps file times but not those of directories and symlinks, and removing
 * lost+found touches the root: without this, a second boundary falling
 * between makeTree() and the copy (likely on a loaded machine) makes rsync
 * report `.d..t......` and the "identical trees" check fails.
 */
function copyTimes(src: string, dst: string): void {
  for (const name of readdirSync(dst)) {
    const s = lstatSync(join(src, name));
    if (s.isDirectory()) copyTimes(join(src, name), join(dst, name));
    lutimesSync(join(dst, name), s.atime, s.mtime);
  }
  const s = lstatSync(src);
  utimesSync(dst, s.atime, s.mtime);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-demo-verify-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  process.env.PATH = savedPath;
});

describe('demo verification', () => {
  it('block: equal files match by sha256, a changed byte does not', async () => {
    writeFileSync(join(dir, 'a.img'), Buffer.alloc(1 << 20, 7));
    writeFileSync(join(dir, 'b.img'), Buffer.alloc(1 << 20, 7));
    const same = await verifyBlock(join(dir, 'a.img'), join(dir, 'b.img'));
    expect(same).toMatchObject({ ok: true, method: 'sha256', differences: [] });
    expect(same.source_sha256).toBe(same.target_sha256);
    writeFileSync(join(dir, 'b.img'), Buffer.alloc(1 << 20, 8));
    expect((await verifyBlock(join(dir, 'a.img'), join(dir, 'b.img'))).ok).toBe(false);
  });

  for (const method of ['rsync', 'node-digest'] as const) {
    it.runIf(method === 'node-digest' || toolOnPath('rsync'))(`files (${method}): identical trees pass; content, extra and missing entries are named`, async () => {
      if (method === 'node-digest') process.env.PATH = join(dir, 'no-tools-here');
      const src = join(dir, `${method}-src`);
      const dst = join(dir, `${method}-dst`);
      makeTree(src);
      cpSync(src, dst, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
      rmSync(join(dst, 'lost+found'), { recursive: true }); // left out by design
      copyTimes(src, dst);
      expect(await verifyFiles(src, dst)).toMatchObject({ ok: true, method, differences: [] });

      writeFileSync(join(dst, 'd/e/f.txt'), 'HELLO\n');
      utimesSync(join(dst, 'd/e/f.txt'), new Date(0), new Date(0));
      writeFileSync(join(dst, 'extra'), 'x');
      rmSync(join(dst, 'empty'));
      const v = await verifyFiles(src, dst);
      expect(v.ok).toBe(false);
      expect(v.method).toBe(method);
      const text = v.differences.join('\n');
      expect(text).toMatch(/f\.txt/);
      expect(text).toMatch(/extra/);
      expect(text).toMatch(/empty/);
    });
  }
});
