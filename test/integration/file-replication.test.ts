// File-level replication on real file systems: for ext4, xfs and btrfs on
// loop devices, a source tree with every entry type (sparse files, xattrs
// and ACLs, long and non-UTF-8 names, hard links across directories, fifos,
// device nodes) is copied in a full pass and then a delta pass (creates,
// modifies, renames, deletes, permission and owner changes); after each,
// `rsync -aHAX --numeric-ids --dry-run --itemize-changes --delete` from
// source to target reports nothing. Runs the real CLI: `ferry receive`
// as a child process and `ferry migrate --files` against it over TLS.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, lstatSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/requirements.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { buildTree, changeTree, rsyncDiff as rsyncDiffAll } from '../helpers/file-tree.js';
import { migrateFiles } from '../helpers/file-pass.js';
import { startReceiver, type RunningReceiver } from '../helpers/block.js';

// The engine leaves out lost+found at the top of a walked file system by
// design (each mkfs makes its own); its mtime differs whenever the two
// mkfs runs straddle a second, so the comparison leaves it out too.
const rsyncDiff = (src: string, dst: string) => rsyncDiffAll(src, dst, ['--exclude=/lost+found']);

const env = needs({ root: true, tools: ['mkfs.ext4', 'mkfs.xfs', 'mkfs.btrfs', 'rsync', 'setfattr', 'setfacl', 'mknod'] });

const MKFS: Record<string, string[]> = {
  ext4: ['mkfs.ext4', '-q', '-F'],
  xfs: ['mkfs.xfs', '-q', '-f'],
  btrfs: ['mkfs.btrfs', '-q', '-f'],
};

describe.runIf(env.ok).each(['ext4', 'xfs', 'btrfs'])('file replication on %s', (fs) => {
  let srcDisk: LoopDisk;
  let dstDisk: LoopDisk;
  let src: string;
  let dst: string;
  let state: string;
  let recv: RunningReceiver;

  beforeAll(async () => {
    srcDisk = LoopDisk.create(512 * 1024 * 1024, `ferry-files-${fs}-src-`);
    dstDisk = LoopDisk.create(512 * 1024 * 1024, `ferry-files-${fs}-dst-`);
    const [cmd, ...args] = MKFS[fs]!;
    sh(cmd!, [...args, srcDisk.device]);
    sh(cmd!, [...args, dstDisk.device]);
    src = srcDisk.mount(srcDisk.device);
    dst = dstDisk.mount(dstDisk.device);
    state = mkdtempSync(join(tmpdir(), `ferry-files-state-${fs}-`));
    buildTree(src);
    recv = await startReceiver(join(state, 'receiver'), [`tree=${dst}`]);
  });
  afterAll(async () => {
    await recv?.stop();
    srcDisk?.destroy();
    dstDisk?.destroy();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it('full pass: rsync -aHAX finds nothing to change, sparse files stay sparse', async () => {
    expect(rsyncDiff(src, dst)).not.toBe(''); // the check itself sees differences
    const r = await migrateFiles(recv.info, src, 'tree', join(state, 'agent'));
    expect(r.pass).toBe('full');
    expect(rsyncDiff(src, dst)).toBe('');
    const sparse = statSync(join(dst, 'var/lib/db/sparse.img'));
    expect(sparse.size).toBe(64 * 1024 * 1024);
    expect(sparse.blocks * 512).toBeLessThan(4 * 1024 * 1024);
    // hard links across directories are one inode on the target too
    expect(lstatSync(join(dst, 'etc/hard-a')).ino).toBe(lstatSync(join(dst, 'var/lib/hard-c')).ino);
  });

  it('delta pass: creates, modifies, renames, deletes, chmod/chown all arrive; the large file travels as pieces', async () => {
    changeTree(src);
    const r = await migrateFiles(recv.info, src, 'tree', join(state, 'agent'));
    expect(r.pass).toBe('delta');
    expect(rsyncDiff(src, dst)).toBe('');
    // 12 MiB file with 64 KiB changed in place: far less than the file travels
    expect(r.bytesOnWire).toBeLessThan(2 * 1024 * 1024);
    expect(lstatSync(join(dst, 'srv/hard-d')).ino).toBe(lstatSync(join(dst, 'etc/hard-a')).ino);
  });

  it('a pass with nothing changed sends (almost) nothing', async () => {
    const r = await migrateFiles(recv.info, src, 'tree', join(state, 'agent'));
    expect(rsyncDiff(src, dst)).toBe('');
    expect(r.bytesOnWire).toBeLessThan(64 * 1024);
  });

  it('a sparse file changed in place travels as the changed pieces (its holes hashed unread on both sides) and stays sparse', async () => {
    const path = join(src, 'var/lib/db/sparse.img');
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 40 * 1024 * 1024); // into a hole
    writeSync(fd, Buffer.alloc(100, 0x17), 0, 100, 1000);
    closeSync(fd);
    sh('sync', ['-f', path]); // allocated, not delayed: the agent takes the extent map (a delayed allocation makes it read the file whole)
    const r = await migrateFiles(recv.info, src, 'tree', join(state, 'agent'));
    expect(r.pass).toBe('delta');
    expect(rsyncDiff(src, dst)).toBe('');
    expect(r.bytesOnWire).toBeLessThan(512 * 1024);
    const copy = statSync(join(dst, 'var/lib/db/sparse.img'));
    expect(copy.size).toBe(64 * 1024 * 1024);
    expect(copy.blocks * 512).toBeLessThan(4 * 1024 * 1024);
  });
});
