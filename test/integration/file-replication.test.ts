// File-level replication on real file systems: for ext4, xfs and btrfs on
// loop devices, a source tree with every entry type (sparse files, xattrs
// and ACLs, long and non-UTF-8 names, hard links across directories, fifos,
// device nodes) is copied in a full pass and then a delta pass (creates,
// modifies, renames, deletes, permission and owner changes); after each,
// `rsync -aHAX --numeric-ids --dry-run --itemize-changes --delete` from
// source to target reports nothing. Runs the real CLI: `ferry receive`
// as a child process and `ferry migrate --files` against it over TLS.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, lstatSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from '../helpers/requirements.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { buildTree, changeTree, rsyncDiff as rsyncDiffAll } from '../helpers/file-tree.js';
import { migrateFiles } from '../helpers/file-pass.js';
import { runFerry } from '../helpers/cli.js';
import { startReceiver, type RunningReceiver } from '../helpers/block.js';

// The engine leaves out lost+found at the top of a walked file system by
// design (each mkfs makes its own); its mtime differs whenever the two
// mkfs runs straddle a second, so the comparison leaves it out too.
const rsyncDiff = (src: string, dst: string) => rsyncDiffAll(src, dst, ['--exclude=/lost+found']);

const env = needs({ root: true, tools: ['mkfs.ext4', 'mkfs.xfs', 'mkfs.btrfs', 'rsync', 'setfattr', 'setfacl', 'mknod'] });
/** ferry's native module, built (npm run build, with a C compiler): the walked-by-path warning is said without it. */
const nativeBuilt = needs({ files: [fileURLToPath(new URL('../../dist/native/ferry-fs.node', import.meta.url))] });

const MKFS: Record<string, string[]> = {
  ext4: ['mkfs.ext4', '-q', '-F'],
  xfs: ['mkfs.xfs', '-q', '-f'],
  btrfs: ['mkfs.btrfs', '-q', '-f'],
};

/**
 * A source file system of type `srcFs` holding buildTree's tree, an empty target of type `dstFs`, and `ferry
 * receive` for it (target name "tree"), made before the describe's tests and removed after them.
 */
function lab(srcFs: string, dstFs: string): { src: string; dst: string; state: string; recv: RunningReceiver } {
  const l = {} as { src: string; dst: string; state: string; recv: RunningReceiver };
  const disks: LoopDisk[] = [];
  beforeAll(async () => {
    for (const [fs, role] of [[srcFs, 'src'], [dstFs, 'dst']] as const) {
      const disk = LoopDisk.create(512 * 1024 * 1024, `ferry-files-${srcFs}-${dstFs}-${role}-`);
      disks.push(disk);
      const [cmd, ...args] = MKFS[fs]!;
      sh(cmd!, [...args, disk.device]);
      l[role] = disk.mount(disk.device);
    }
    l.state = mkdtempSync(join(tmpdir(), `ferry-files-state-${srcFs}-${dstFs}-`));
    buildTree(l.src);
    l.recv = await startReceiver(join(l.state, 'receiver'), [`tree=${l.dst}`]);
  });
  afterAll(async () => {
    await l.recv?.stop();
    for (const disk of disks) disk.destroy();
    if (l.state) rmSync(l.state, { recursive: true, force: true });
  });
  return l;
}

describe.runIf(env.ok).each(['ext4', 'xfs', 'btrfs'])('file replication on %s', (fs) => {
  const l = lab(fs, fs);

  it('full pass: rsync -aHAX finds nothing to change, sparse files stay sparse', async () => {
    expect(rsyncDiff(l.src, l.dst)).not.toBe(''); // the check itself sees differences
    const r = await migrateFiles(l.recv.info, l.src, 'tree', join(l.state, 'agent'));
    expect(r.pass).toBe('full');
    expect(rsyncDiff(l.src, l.dst)).toBe('');
    const sparse = statSync(join(l.dst, 'var/lib/db/sparse.img'));
    expect(sparse.size).toBe(64 * 1024 * 1024);
    expect(sparse.blocks * 512).toBeLessThan(4 * 1024 * 1024);
    // hard links across directories are one inode on the target too
    expect(lstatSync(join(l.dst, 'etc/hard-a')).ino).toBe(lstatSync(join(l.dst, 'var/lib/hard-c')).ino);
  });

  it('delta pass: creates, modifies, renames, deletes, chmod/chown all arrive; the large file travels as pieces', async () => {
    changeTree(l.src);
    const r = await migrateFiles(l.recv.info, l.src, 'tree', join(l.state, 'agent'));
    expect(r.pass).toBe('delta');
    expect(rsyncDiff(l.src, l.dst)).toBe('');
    // 12 MiB file with 64 KiB changed in place: far less than the file travels
    expect(r.bytesOnWire).toBeLessThan(2 * 1024 * 1024);
    expect(lstatSync(join(l.dst, 'srv/hard-d')).ino).toBe(lstatSync(join(l.dst, 'etc/hard-a')).ino);
  });

  it('a pass with nothing changed sends (almost) nothing', async () => {
    const r = await migrateFiles(l.recv.info, l.src, 'tree', join(l.state, 'agent'));
    expect(rsyncDiff(l.src, l.dst)).toBe('');
    expect(r.bytesOnWire).toBeLessThan(64 * 1024);
  });

  it('a sparse file changed in place travels as the changed pieces (its holes hashed unread on both sides) and stays sparse', async () => {
    const path = join(l.src, 'var/lib/db/sparse.img');
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 40 * 1024 * 1024); // into a hole
    writeSync(fd, Buffer.alloc(100, 0x17), 0, 100, 1000);
    closeSync(fd);
    sh('sync', ['-f', path]); // allocated, not delayed: the agent takes the extent map (a delayed allocation makes it read the file whole)
    const r = await migrateFiles(l.recv.info, l.src, 'tree', join(l.state, 'agent'));
    expect(r.pass).toBe('delta');
    expect(rsyncDiff(l.src, l.dst)).toBe('');
    expect(r.bytesOnWire).toBeLessThan(512 * 1024);
    const copy = statSync(join(l.dst, 'var/lib/db/sparse.img'));
    expect(copy.size).toBe(64 * 1024 * 1024);
    expect(copy.blocks * 512).toBeLessThan(4 * 1024 * 1024);
  });
});

// From xfs onto ext4: xfs shows root each ACL again as trusted.SGI_ACL_FILE / trusted.SGI_ACL_DEFAULT, which
// are never copied (platform/xattr-names.ts): the ACLs arrive as ACLs, and nothing of xfs's own layout lands
// on the ext4 target as an attribute of its own.
describe.runIf(env.ok)('file replication from xfs onto ext4', () => {
  const l = lab('xfs', 'ext4');
  /** rsync -aHAX leaving out the names xfs alone lists (the source has them, ext4 must not). */
  const diff = () => rsyncDiffAll(l.src, l.dst, ['--exclude=/lost+found', '--filter=-x trusted.SGI_*']);
  /** Every trusted.SGI_* attribute below dst, as getfattr dumps them (empty: none). */
  const sgiOnTarget = () => sh('getfattr', ['-R', '-h', '-P', '--absolute-names', '-m', '^trusted\\.SGI_', l.dst]).trim();

  it('full and delta pass: the ACLs arrive, xfs’s trusted.SGI_ACL_* do not', async () => {
    // The case itself: the source lists its ACLs twice.
    expect(sh('getfattr', ['-R', '-h', '-P', '--absolute-names', '-m', '^trusted\\.SGI_ACL_', l.src])).toMatch(/trusted\.SGI_ACL_DEFAULT/);
    expect((await migrateFiles(l.recv.info, l.src, 'tree', join(l.state, 'agent'))).pass).toBe('full');
    expect(diff()).toBe('');
    expect(sgiOnTarget()).toBe('');
    expect(sh('getfacl', ['-cp', join(l.dst, 'home/user/docs/notes.txt')])).toMatch(/^user:1234:rw-/m);
    changeTree(l.src);
    sh('setfacl', ['-m', 'u:4321:r', join(l.src, 'etc/new-file')]);
    expect((await migrateFiles(l.recv.info, l.src, 'tree', join(l.state, 'agent'))).pass).toBe('delta');
    expect(diff()).toBe('');
    expect(sgiOnTarget()).toBe('');
    expect(sh('getfacl', ['-cp', join(l.dst, 'etc/new-file')])).toMatch(/^user:4321:r--/m);
  });

  it.runIf(nativeBuilt.ok)('says when the tree is walked by path (no native module), and copies the same', async () => {
    const pass = async (env: NodeJS.ProcessEnv) => {
      const { recv } = l;
      const r = await runFerry(['migrate', '--to', `127.0.0.1:${recv.info.port}`, '--token', recv.info.token, '--fingerprint', recv.info.fingerprint, '--files', `${l.src}=tree`, '--state', join(l.state, 'agent'), '--json'], { env });
      expect(r.code, r.stderr).toBe(0);
      return r.stderr;
    };
    const warning = /native module is not loaded here: the tree is listed and read by path/;
    expect(await pass({ FERRY_NATIVE: undefined })).not.toMatch(warning);
    writeFileSync(join(l.src, 'etc/walked-by-path'), 'new\n');
    const without = await pass({ FERRY_NATIVE: '0' });
    expect(without).toMatch(warning);
    expect(without.match(new RegExp(warning.source, 'g'))).toHaveLength(1);
    expect(diff()).toBe('');
  });
});
