// The file walker on a real tree: its manifest lines, listed on worker
// threads and reassembled in depth-first order, must be exactly what a plain
// recursive walk (sorted names, lstat, entry.ts + manifest.ts formatting)
// gives — for odd names, every entry type, excludes, a mount point it must
// not cross, and with the workers off (the fallback) as well as on, and
// with the native lister (platform/native-fs.ts) and node:fs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { entryType, fromStats } from '../../src/replication/file/entry.js';
import { buildExcluder } from '../../src/replication/file/excludes.js';
import { formatEntry } from '../../src/replication/file/manifest.js';
import { Walker, type WalkOptions } from '../../src/replication/file/walker.js';
import { nativeFsPath } from '../../src/platform/native-fs.js';
import type { Logger } from '../../src/platform/log.js';
import { needs } from '../helpers/requirements.js';

const env = needs({ root: true, tools: ['mkfifo', 'mount', 'umount'] });

/** The reference: a straightforward synchronous walk. */
function reference(root: string, options: WalkOptions): string[] {
  const rootBuf = Buffer.from(root);
  const excluded = buildExcluder(root, options);
  const rootSt = lstatSync(rootBuf, { bigint: true });
  const out = [formatEntry(fromStats(Buffer.alloc(0), 'd', rootSt))];
  const visit = (rel: Buffer) => {
    const abs = rel.length === 0 ? rootBuf : Buffer.concat([rootBuf, Buffer.from('/'), rel]);
    const names = readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const name of names) {
      const r = rel.length === 0 ? name : Buffer.concat([rel, Buffer.from('/'), name]);
      const a = Buffer.concat([rootBuf, Buffer.from('/'), r]);
      const st = lstatSync(a, { bigint: true });
      const type = entryType(st);
      if (type === null || excluded(r.toString('utf8'), type === 'd')) continue;
      out.push(formatEntry(fromStats(r, type, st, type === 'l' ? readlinkSync(a, { encoding: 'buffer' }) : undefined)));
      if (type === 'd' && st.dev === rootSt.dev) visit(r);
    }
  };
  visit(Buffer.alloc(0));
  return out;
}

async function walked(root: string, options: WalkOptions): Promise<{ lines: string[]; skipped: string[]; listers: Set<string>; said: string[] }> {
  const skipped: string[] = [];
  const listers = new Set<string>();
  // What the walk says it lists with (its debug record).
  const said: string[] = [];
  const log = { debug: (o: { lister?: string }, msg: string) => msg === 'walk' && said.push(o.lister ?? '?'), warn: () => {} } as unknown as Logger;
  const w = new Walker(root, { ...options, log, onSkip: (p, reason) => skipped.push(`${p.toString('latin1')}: ${reason}`) });
  const lines = [w.root];
  try {
    for (let stretch = await w.next(); stretch; stretch = await w.next()) {
      lines.push(...stretch.listing.lines.slice(stretch.from, stretch.to));
      // (A directory that could not be listed comes as an empty stretch, by no lister.)
      if (stretch.unlisted === undefined) listers.add(stretch.listing.native ? 'native' : 'node:fs');
    }
  } finally {
    await w.close();
  }
  return { lines, skipped, listers, said };
}

/** A walk with the native lister on or off (FERRY_NATIVE=0). */
async function walkedWith(native: boolean, root: string, options: WalkOptions): Promise<Awaited<ReturnType<typeof walked>>> {
  const was = process.env.FERRY_NATIVE;
  if (native) delete process.env.FERRY_NATIVE;
  else process.env.FERRY_NATIVE = '0';
  try {
    expect(nativeFsPath() !== null).toBe(native);
    const got = await walked(root, options);
    // Every listing came from the lister asked for (on the workers as on this thread).
    expect([...got.listers]).toEqual([native ? 'native' : 'node:fs']);
    // … and the walk says which (its debug record).
    expect(got.said).toEqual([native ? 'native' : 'node:fs']);
    return got;
  } finally {
    if (was === undefined) delete process.env.FERRY_NATIVE;
    else process.env.FERRY_NATIVE = was;
  }
}

describe.runIf(env.ok)('file walker', () => {
  let root: string;
  let mounted = '';
  let sock: ReturnType<typeof createServer> | undefined;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ferry-walker-'));
    const p = (...s: string[]) => join(root, ...s);
    // Many directories (so that listings run ahead on several workers) with names that sort around '/'.
    for (let i = 0; i < 60; i++) {
      for (const sub of ['a', 'a-b', 'a.b', 'a b', 'z']) {
        mkdirSync(p(`d${i}`, sub), { recursive: true });
        for (let j = 0; j < 5; j++) writeFileSync(p(`d${i}`, sub, `f${j}`), `${i}/${sub}/${j}`);
      }
    }
    mkdirSync(p('d1', 'a', 'deep', 'er', 'still'), { recursive: true });
    writeFileSync(p('d1', 'a', 'deep', 'er', 'still', 'leaf'), 'x');
    // Raw-byte names: not UTF-8, with a '%', a tab and a newline.
    const odd = Buffer.concat([Buffer.from(root + '/odd-'), Buffer.from([0xff, 0xfe, 0x25, 0x09, 0x0a])]);
    mkdirSync(odd);
    writeFileSync(Buffer.concat([odd, Buffer.from('/inner')]), 'y');
    symlinkSync('d0/a/f0', p('link-to-file'));
    symlinkSync(Buffer.from([0xff, 0x2f, 0x78]) as unknown as string, p('link-raw'));
    linkSync(p('d0', 'a', 'f1'), p('hard-1'));
    execFileSync('mkfifo', [p('fifo')]);
    mkdirSync(p('excluded-dir', 'x'), { recursive: true });
    writeFileSync(p('keep.log'), 'l');
    mkdirSync(p('mnt'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'ferry-walker-test', p('mnt')]);
    mounted = p('mnt');
    writeFileSync(p('mnt', 'other-fs-file'), 'must not be walked');
    sock = createServer();
    await new Promise<void>((r) => sock!.listen(p('sock'), r));
  });

  afterAll(async () => {
    await new Promise<void>((r) => (sock ? sock.close(() => r()) : r()));
    if (mounted) execFileSync('umount', [mounted]);
    rmSync(root, { recursive: true, force: true });
  });

  // The native module is built by `npm run build` (CI: always; packaging/build-native.mjs).
  const nativeBuilt = nativeFsPath() !== null || process.env.FERRY_REQUIRE_PRIVILEGED === '1';
  for (const [native, threads] of [[true, 4], [true, 0], [false, 4], [false, 0]] as const) {
    it.runIf(!native || nativeBuilt)(`gives exactly the plain walk's lines (${threads ? `${threads} workers` : 'no workers'}, ${native ? 'native lister' : 'node:fs'})`, async () => {
      const options: WalkOptions = { threads, patterns: ['/excluded-dir', '*.log'] };
      const { lines, skipped } = await walkedWith(native, root, options);
      expect(lines).toEqual(reference(root, options));
      expect(lines.length).toBeGreaterThan(1500);
      const paths = lines.map((l) => l.split('\t')[0]);
      expect(paths).toContain('odd-%ff%fe%25%09%0a/inner');
      expect(paths).toContain('mnt'); // the mount point itself …
      expect(paths).not.toContain('mnt/other-fs-file'); // … not the other file system
      expect(paths).not.toContain('excluded-dir');
      expect(paths).not.toContain('keep.log');
      expect(paths.indexOf('d1/a/deep/er/still/leaf')).toBeLessThan(paths.indexOf('d1/a-b'));
      expect(skipped).toEqual(['sock: sockets are not copied']);
    });
  }

  it.runIf(nativeBuilt)("does not list a directory through a symlink put above it since its parent's listing (native lister)", async () => {
    // tree/a/b/mine; elsewhere/b/secret. Once a's listing is taken (b in it), a becomes a symlink to elsewhere:
    // tree/a/b would then be elsewhere/b. (node:fs, the fallback without the module, follows it.)
    const top = mkdtempSync(join(tmpdir(), 'ferry-walk-swap-'));
    const tree = join(top, 'tree');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    writeFileSync(join(tree, 'a', 'b', 'mine'), 'mine');
    mkdirSync(join(top, 'elsewhere', 'b'), { recursive: true });
    writeFileSync(join(top, 'elsewhere', 'b', 'secret'), 'not in the tree');
    const skipped: string[] = [];
    // No workers: each directory is listed when the walk enters it, so the swap lands between the two listings.
    const w = new Walker(tree, { threads: 0, onSkip: (p, reason) => skipped.push(`${p.toString('latin1')}: ${reason}`) });
    const lines: string[] = [];
    try {
      expect(nativeFsPath()).not.toBeNull();
      for (let stretch = await w.next(); stretch; stretch = await w.next()) {
        lines.push(...stretch.listing.lines.slice(stretch.from, stretch.to));
        if (stretch.listing.dir === 'a') {
          renameSync(join(tree, 'a'), join(tree, 'a.real'));
          symlinkSync(join(top, 'elsewhere'), join(tree, 'a'));
        }
      }
    } finally {
      await w.close();
      rmSync(top, { recursive: true, force: true });
    }
    expect(lines.map((l) => l.split('\t')[0])).toEqual(['a', 'a/b']);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatch(/^a\/b: cannot list directory: (ELOOP|ENOTDIR): /);
  });

  it.runIf(nativeBuilt)('lists a directory of more than 100,000 entries with node:fs, through an fd opened beneath the root, on worker threads without a warning', async () => {
    // The native lister declines such a directory (ferry-fs.c MAX_ENTRIES); node:fs reads it through an fd opened
    // as the lister opens directories (/proc/self/fd/N/name), so that a symlink put above it while its entries are
    // lstat'ed is not followed (test/unit/replication/file/list-directory-native.test.ts swaps one in). Here: the
    // real lister declines it, every entry is listed through the fd, and the walk's worker threads (the built
    // dist/, in a child process) say nothing on stderr: the fd is closed by the module (node:fs's closeSync warns
    // on a worker about an fd it did not open).
    const top = mkdtempSync(join(tmpdir(), 'ferry-walk-big-'));
    const count = 100_001;
    mkdirSync(join(top, 'a', 'big'), { recursive: true });
    execFileSync('python3', ['-c', `import os\nfor i in range(${count}): os.close(os.open("${join(top, 'a', 'big')}/f%06d" % i, os.O_CREAT | os.O_WRONLY, 0o644))`]);
    symlinkSync('f000000', join(top, 'a', 'big', 'link'));
    const walker = fileURLToPath(new URL('../../dist/replication/file/walker.js', import.meta.url));
    const script = `import { Walker } from ${JSON.stringify(walker)};
      import { createHash } from 'node:crypto';
      const w = new Walker(${JSON.stringify(top)}, { threads: 2, onSkip: (p, r) => console.error('skipped', p.toString('latin1'), r) });
      const h = createHash('sha256');
      let lines = 0, native = 0;
      for (let s = await w.next(); s; s = await w.next()) {
        for (const l of s.listing.lines.slice(s.from, s.to)) { h.update(l + '\\n'); lines++; }
        if (s.from === 0 && s.listing.native) native++;
      }
      await w.close();
      console.log(JSON.stringify({ lines, native, sha: h.digest('hex') }));`;
    // A file, not -e with --input-type=module: the workers' eval'ed code would then be taken as a module too.
    const scriptDir = mkdtempSync(join(tmpdir(), 'ferry-walk-big-script-'));
    writeFileSync(join(scriptDir, 'walk.mjs'), script);
    try {
      const r = spawnSync(process.execPath, [join(scriptDir, 'walk.mjs')], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      // Every line as a plain walk by path makes it (the root's line is the walk's own, not in a listing).
      const want = reference(top, {}).slice(1);
      expect(JSON.parse(r.stdout)).toEqual({ lines: count + 3, native: 2, sha: createHash('sha256').update(want.map((l) => `${l}\n`).join('')).digest('hex') });
    } finally {
      rmSync(top, { recursive: true, force: true });
      rmSync(scriptDir, { recursive: true, force: true });
    }
  }, 120_000);

  it.runIf(nativeBuilt)('walks a root named through a symlink with a trailing slash, as node:fs does', async () => {
    const link = `${root}-link`;
    symlinkSync(root, link);
    try {
      for (const threads of [2, 0]) {
        const options: WalkOptions = { threads, patterns: ['/excluded-dir', '*.log'] };
        const on = await walkedWith(true, `${link}/`, options);
        const off = await walkedWith(false, `${link}/`, options);
        expect(on.lines).toEqual(off.lines);
        expect(on.lines).toEqual(reference(root, options));
      }
    } finally {
      rmSync(link);
    }
  });

  it.runIf(nativeBuilt)('skips what is longer than PATH_MAX as node:fs does, and lists the rest', async () => {
    // A directory whose path is just under 4096 bytes, holding a file, a directory and a symlink whose
    // full paths are over it, and one short file that fits. Made with relative paths (cd) in a shell.
    const deep = join(root, 'deep-tree');
    mkdirSync(deep);
    // Directories of 200 bytes, then one that brings the path to exactly 4000 bytes.
    const step = 'p'.repeat(200);
    const levels = Math.floor((4000 - deep.length) / (step.length + 1));
    const script = [`cd '${deep}'`];
    for (let i = 0; i < levels; i++) script.push(`mkdir ${step} && cd ${step}`);
    const pad = 4000 - deep.length - levels * (step.length + 1) - 1;
    if (pad > 0) script.push(`mkdir ${'q'.repeat(pad)} && cd ${'q'.repeat(pad)}`);
    // 4000 + 1 + 80 fits in PATH_MAX (4096 with its NUL); 4000 + 1 + 120 does not.
    const fits = 'f'.repeat(80);
    // And a directory whose own path is 4095 bytes: lstat reaches it, but not its listing ('/' makes 4096).
    script.push(`touch ${'x'.repeat(120)} ${fits}`, `mkdir ${'y'.repeat(120)} ${'w'.repeat(94)}`, `ln -s t ${'z'.repeat(120)}`);
    execFileSync('sh', ['-c', script.join(' && ')]);
    try {
      for (const threads of [2, 0]) {
        const on = await walkedWith(true, deep, { threads });
        const off = await walkedWith(false, deep, { threads });
        expect(on.lines).toEqual(off.lines);
        expect(on.skipped).toEqual(off.skipped);
        expect(on.skipped).toHaveLength(4);
        for (const s of on.skipped) expect(s).toContain('ENAMETOOLONG');
        expect(on.skipped.filter((s) => s.includes('cannot list directory'))).toHaveLength(1);
        expect(on.lines.some((l) => l.split('\t')[0]!.endsWith(`/${fits}`))).toBe(true);
        expect(on.lines.some((l) => l.split('\t')[0]!.endsWith(`/${'w'.repeat(94)}`))).toBe(true);
      }
    } finally {
      // rm(1) goes down with relative paths; rmSync would need the paths over PATH_MAX.
      execFileSync('rm', ['-rf', deep]);
    }
  });
});
