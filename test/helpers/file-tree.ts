// A source tree with every entry type the file engine must carry, and a set
// of changes for a delta pass. Used by the file-replication tests; needs
// root (owners, device nodes) and setfattr/setfacl.

import { execFileSync } from 'node:child_process';
import {
  appendFileSync, chmodSync, chownSync, linkSync, lstatSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, renameSync,
  rmSync, statSync, symlinkSync, writeFileSync, writeSync, unlinkSync,
} from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { setAttributeSync } from '@napi-rs/xattr';
import { join, relative } from 'node:path';

const run = (cmd: string, args: string[]): void => {
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
};

/** Path helper for raw byte names. */
export function bjoin(root: string, ...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat([Buffer.from(root), ...parts.flatMap((p) => [Buffer.from('/'), Buffer.isBuffer(p) ? p : Buffer.from(p)])]);
}

export const NON_UTF8 = Buffer.from([0x6e, 0x6f, 0x6e, 0xff, 0xfe, 0x2d, 0x75, 0x74, 0x66, 0x38]); // "non\xff\xfe-utf8"

export function buildTree(root: string, opts: { xattrs?: boolean } = {}): void {
  const xattrs = opts.xattrs ?? true;
  mkdirSync(join(root, 'etc/app'), { recursive: true });
  mkdirSync(join(root, 'var/lib/db'), { recursive: true });
  mkdirSync(join(root, 'home/user/docs'), { recursive: true });
  writeFileSync(join(root, 'etc/hostname'), 'source-host\n');
  writeFileSync(join(root, 'etc/empty'), '');
  writeFileSync(join(root, 'etc/app/config.yaml'), 'a: 1\n'.repeat(1000));
  writeFileSync(join(root, 'home/user/docs/notes.txt'), 'notes\n');
  chownSync(join(root, 'home/user'), 1000, 1000);
  chownSync(join(root, 'home/user/docs/notes.txt'), 1000, 100);
  // large ids (beyond ustar's 7 octal digits)
  writeFileSync(join(root, 'home/user/bigid'), 'x');
  chownSync(join(root, 'home/user/bigid'), 4_000_000_000, 3_000_000_000);
  // modes
  writeFileSync(join(root, 'etc/setuid-bin'), '#!/bin/sh\n');
  chmodSync(join(root, 'etc/setuid-bin'), 0o4755);
  mkdirSync(join(root, 'tmpdir'));
  chmodSync(join(root, 'tmpdir'), 0o1777);
  mkdirSync(join(root, 'locked'));
  writeFileSync(join(root, 'locked/inside'), 'in a 0500 dir');
  chmodSync(join(root, 'locked'), 0o500);
  // large binary file (patched in place by the delta)
  writeFileSync(join(root, 'var/lib/db/data.bin'), randomBytes(12 * 1024 * 1024));
  // sparse file: 64 MiB with two data islands
  const sp = openSync(join(root, 'var/lib/db/sparse.img'), 'w');
  writeSync(sp, randomBytes(100_000), 0, 100_000, 5 * 1024 * 1024);
  writeSync(sp, Buffer.from('tail'), 0, 4, 60 * 1024 * 1024);
  closeSync(sp);
  run('truncate', ['-s', '64M', join(root, 'var/lib/db/sparse.img')]);
  // symlinks: relative, absolute, dangling, to a directory
  symlinkSync('../etc/hostname', join(root, 'home/user/hostname-link'));
  symlinkSync('/etc/passwd', join(root, 'home/user/abs-link'));
  symlinkSync('does/not/exist', join(root, 'home/user/dangling'));
  symlinkSync('docs', join(root, 'home/user/docs-link'));
  // hard links across directories
  writeFileSync(join(root, 'etc/hard-a'), 'shared by three names\n');
  linkSync(join(root, 'etc/hard-a'), join(root, 'home/user/hard-b'));
  linkSync(join(root, 'etc/hard-a'), join(root, 'var/lib/hard-c'));
  // fifo and device nodes
  run('mknod', [join(root, 'var/lib/fifo'), 'p']);
  run('mknod', [join(root, 'var/lib/null-dev'), 'c', '1', '3']);
  run('mknod', [join(root, 'var/lib/blk-dev'), 'b', '7', '200']);
  // long names: a 255-byte name and a path well over 100 bytes
  const long = 'L'.repeat(255);
  writeFileSync(join(root, long), 'long name');
  const deep = join(root, ...Array.from({ length: 12 }, (_, i) => `directory-level-${i}-with-a-longish-name`));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'leaf.txt'), 'deep');
  // non-UTF-8 names (a directory and a file inside it)
  mkdirSync(bjoin(root, NON_UTF8));
  writeFileSync(bjoin(root, NON_UTF8, Buffer.from([0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])), 'latin-1 name');
  writeFileSync(bjoin(root, NON_UTF8, 'utf8-inside.txt'), 'inside');
  writeFileSync(join(root, 'ünïcödé-名前.txt'), 'utf-8 name');
  // times before 1970: a file, a symlink and their directory (set last: the entries inside change its mtime)
  mkdirSync(join(root, 'old'));
  writeFileSync(join(root, 'old/apollo'), 'one small step\n');
  symlinkSync('apollo', join(root, 'old/link'));
  run('touch', ['-h', '-d', '1969-07-20 20:17:40.5 UTC', join(root, 'old/apollo'), join(root, 'old/link'), join(root, 'old')]);
  if (xattrs) {
    run('setfattr', ['-n', 'user.comment', '-v', 'hello', join(root, 'etc/hostname')]);
    run('setfattr', ['-n', 'user.binary', '-v', '0x00ff10ee', join(root, 'etc/app/config.yaml')]);
    run('setfattr', ['-n', 'user.dir', '-v', 'on a dir', join(root, 'etc/app')]);
    run('setfattr', ['-n', 'trusted.secret', '-v', 'root only', join(root, 'etc/empty')]);
    // A large file and a sparse one: their xattrs are read on the fd they are sent from, not with a small-file batch.
    run('setfattr', ['-n', 'user.large', '-v', 'on a large file', join(root, 'var/lib/db/data.bin')]);
    run('setfattr', ['-n', 'user.sparse', '-v', '0x0102', join(root, 'var/lib/db/sparse.img')]);
    // setfattr(1) takes text arguments: reach the non-UTF-8 directory through /proc/self/fd.
    const dfd = openSync(bjoin(root, NON_UTF8), 'r');
    try {
      setAttributeSync(`/proc/self/fd/${dfd}/utf8-inside.txt`, 'user.x', 'in non-utf8 dir');
    } finally {
      closeSync(dfd);
    }
    run('setfacl', ['-m', 'u:1234:rw,g:5678:r', join(root, 'home/user/docs/notes.txt')]);
    run('setfacl', ['-d', '-m', 'u:1234:rwx', join(root, 'home/user/docs')]);
  }
}

/** Creates, modifies, renames, deletes, and changes permissions and owners. */
export function changeTree(root: string, opts: { xattrs?: boolean } = {}): void {
  writeFileSync(join(root, 'etc/new-file'), 'created by the delta\n');
  mkdirSync(join(root, 'srv/www'), { recursive: true });
  writeFileSync(join(root, 'srv/www/index.html'), '<h1>new</h1>');
  appendFileSync(join(root, 'etc/app/config.yaml'), 'b: 2\n');
  // in-place change of 64 KiB in the large file
  const fd = openSync(join(root, 'var/lib/db/data.bin'), 'r+');
  writeSync(fd, randomBytes(65536), 0, 65536, 5 * 1024 * 1024);
  closeSync(fd);
  renameSync(join(root, 'home/user/docs/notes.txt'), join(root, 'home/user/docs/renamed.txt'));
  unlinkSync(join(root, 'etc/empty'));
  rmSync(join(root, 'directory-level-0-with-a-longish-name'), { recursive: true });
  chmodSync(join(root, 'etc/hostname'), 0o600);
  chownSync(join(root, 'etc/setuid-bin'), 2000, 2000);
  chmodSync(join(root, 'etc/setuid-bin'), 0o4755);
  // a file replaced by a directory and a directory by a file
  unlinkSync(join(root, 'home/user/bigid'));
  mkdirSync(join(root, 'home/user/bigid'));
  writeFileSync(join(root, 'home/user/bigid/now-a-dir'), '');
  rmSync(join(root, 'tmpdir'), { recursive: true });
  writeFileSync(join(root, 'tmpdir'), 'now a file');
  // new hard link, changed symlink
  linkSync(join(root, 'etc/hard-a'), join(root, 'srv/hard-d'));
  unlinkSync(join(root, 'home/user/hostname-link'));
  symlinkSync('/elsewhere', join(root, 'home/user/hostname-link'));
  if (opts.xattrs ?? true) {
    run('setfattr', ['-n', 'user.comment', '-v', 'changed', join(root, 'etc/hostname')]);
    run('setfattr', ['-x', 'user.binary', join(root, 'etc/app/config.yaml')]);
  }
}

/** What rsync would still change to make dst equal to src (empty when identical). */
export function rsyncDiff(src: string, dst: string, extra: string[] = []): string {
  return execFileSync('rsync', ['-aHAX', '--numeric-ids', '--dry-run', '--itemize-changes', '--delete', ...extra, `${src}/`, `${dst}/`], {
    encoding: 'latin1',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/**
 * Relative path → sha256 of every regular file below root (and 'dir' for
 * each directory with `dirs`). `follow` reads through symlinks (stat);
 * without it symlinks and other non-files are left out (lstat).
 */
export function treeDigest(root: string, o: { dirs?: boolean; follow?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = o.follow ? statSync(p) : lstatSync(p);
      if (st.isDirectory()) {
        if (o.dirs) out[relative(root, p)] = 'dir';
        walk(p);
      } else if (o.follow || st.isFile()) {
        out[relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
      }
    }
  };
  walk(root);
  return out;
}
