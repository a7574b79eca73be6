// A file-level target whose file system fills up in the middle of a full
// pass, against a real `ferry receive` child: the pass ends with SMS.1315
// naming the entry that did not fit (small new files are written by the
// receiver's writer threads, receiver/file-writers.ts, large ones by its main
// thread: both are in the tree), nothing is left half-written under a real
// name nor as a temporary file, the receiver keeps serving, and once space
// is freed the same pass resumes and completes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { needs } from '../helpers/requirements.js';
import { runFerry } from '../helpers/cli.js';
import { startReceiver, parseSummaries, type RunningReceiver } from '../helpers/block.js';
import { rsyncDiff } from '../helpers/file-tree.js';
import { sh } from '../helpers/loop.js';

const env = needs({ root: true, tools: ['mount', 'umount', 'rsync'] });

const KiB = 1024;

/** Every regular file under dir, by path relative to dir. */
function files(dir: string, top = dir): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (lstatSync(p).isDirectory()) out.push(...files(p, top));
    else out.push(relative(top, p));
  }
  return out;
}

describe.runIf(env.ok)('a file target on a full file system', () => {
  let base: string;
  let small: string;
  let mounted = false;
  let recv: RunningReceiver;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ferry-file-full-'));
    small = join(base, 'small');
    mkdirSync(small);
    sh('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'ferry-test-file-full', small]);
    mounted = true;
    recv = await startReceiver(join(base, 'receiver'), [`full=${join(small, 'tree')}`]);
  });
  afterAll(async () => {
    await recv?.stop();
    if (mounted) sh('umount', [small]);
    rmSync(base, { recursive: true, force: true });
  });

  it('ends the pass with SMS.1315 naming the entry, leaves no partial or temporary file, keeps serving, and completes once space is freed', async () => {
    // 8 MiB of incompressible files for a 6 MiB file system: 240 small files in four directories, and one large one.
    const src = join(base, 'src');
    for (let d = 0; d < 4; d++) {
      mkdirSync(join(src, `dir${d}`), { recursive: true });
      for (let f = 0; f < 60; f++) writeFileSync(join(src, `dir${d}`, `f${f}.bin`), randomBytes(32 * KiB));
    }
    writeFileSync(join(src, 'dir0', 'large.bin'), randomBytes(512 * KiB));
    const args = ['migrate', '--to', `127.0.0.1:${recv.info.port}`, '--token', recv.info.token, '--fingerprint', recv.info.fingerprint, '--files', `${src}=full`, '--state', join(base, 'agent'), '--json'];

    const r = await runFerry(args, { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/SMS\.1315/);
    expect(r.stderr).toMatch(/Insufficient free space on target partition full: tar entry "dir\d\/[a-z0-9]+\.bin": ENOSPC/);
    expect(recv.child.exitCode).toBeNull();
    expect(recv.stderr()).not.toMatch(/[Uu]nhandled/);
    // What is under a real name is whole; no temporary file is left.
    const written = files(join(small, 'tree'));
    expect(written.length).toBeGreaterThan(0);
    for (const f of written) {
      expect(f).not.toMatch(/\.ferry-tmp-/);
      expect(readFileSync(join(small, 'tree', f)).equals(readFileSync(join(src, f))), f).toBe(true);
    }

    // Space freed (the tmpfs grows): the same pass resumes where the receiver's resume point is and completes.
    sh('mount', ['-o', 'remount,size=64m', small]);
    const again = await runFerry(args, { timeoutMs: 60_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(parseSummaries(again.stdout)[0]).toMatchObject({ pass: 'full' });
    expect(rsyncDiff(src, join(small, 'tree'))).toBe('');
    expect(recv.child.exitCode).toBeNull();
  });
});
