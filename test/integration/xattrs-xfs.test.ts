// writeXattrs on a real xfs, where root sees each POSIX ACL twice: as
// system.posix_acl_* and as trusted.SGI_ACL_*, and removing either removes
// both. Applying an unchanged ACL (what a delta does for a directory whose
// ctime moved) must keep it — with the native read (values compared before
// anything is removed, the bug this test was written for: the ACL was lost,
// and a `npm run bench files` delta showed `.d.......ax` on two directories)
// and with @napi-rs/xattr alone (FERRY_NATIVE=0 in a child process, on the
// built dist/: \`npm run build\` first, as for every test).
// Those trusted.SGI_ACL_* names are never read, sent or written
// (platform/xattr-names.ts): read from xfs and written onto ext4 they became
// real attributes there, in xfs's layout.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeFsPath } from '../../src/platform/native-fs.js';
import pino from 'pino';
import { XATTRS_REFUSED } from '../../src/platform/xattr-ops.js';
import { readXattrs, readXattrsFd, writeXattrs } from '../../src/platform/xattrs-linux.js';
import { encodeHeader, ZERO_BLOCKS, type TarHeader } from '../../src/protocol/tar-format.js';
import { FileExtractor } from '../../src/receiver/file-extractor.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';

const built = fileURLToPath(new URL('../../dist/native/ferry-fs.node', import.meta.url));
const distXattrs = fileURLToPath(new URL('../../dist/platform/xattrs-linux.js', import.meta.url));
const env = needs({ root: true, files: [built, distXattrs], tools: ['mkfs.xfs', 'mkfs.ext4', 'setfacl', 'getfacl', 'setfattr', 'getfattr'] });

/** The names getfattr lists for a path (every namespace root can see), sorted. */
const rawNames = (path: string) =>
  sh('getfattr', ['--absolute-names', '-m', '-', path])
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .sort();

describe.runIf(env.ok)('xattrs on xfs', () => {
  let disk: LoopDisk;
  let root: string;

  beforeAll(() => {
    disk = LoopDisk.create(320 * 1024 * 1024, 'ferry-xattrs-xfs-');
    sh('mkfs.xfs', ['-q', disk.device]);
    root = disk.mount(disk.device);
  });

  afterAll(() => disk?.destroy());

  const acl = (dir: string) => sh('getfacl', ['-cp', dir]);

  /** A directory with an access and a default ACL and a user xattr; the xattrs a source on ext4 would send for it. */
  function aclDir(name: string): { dir: string; want: Map<string, Buffer>; before: string } {
    const dir = join(root, name);
    mkdirSync(dir);
    sh('setfacl', ['-m', 'u:nobody:rx', '-d', '-m', 'u:nobody:rx', dir]);
    sh('setfattr', ['-n', 'user.kept', '-v', 'yes', dir]);
    // The case itself: xfs lists the ACLs twice. (arrayContaining: a host may add its security label.)
    expect(rawNames(dir)).toEqual(expect.arrayContaining(['system.posix_acl_access', 'system.posix_acl_default', 'trusted.SGI_ACL_DEFAULT', 'trusted.SGI_ACL_FILE', 'user.kept']));
    const want = readXattrs(Buffer.from(dir));
    expect([...want.keys()]).toEqual(expect.arrayContaining(['system.posix_acl_access', 'system.posix_acl_default', 'user.kept']));
    expect([...want.keys()].filter((k) => k.startsWith('trusted.'))).toEqual([]);
    return { dir, want, before: acl(dir) };
  }

  it('keeps an unchanged ACL that is listed twice (native read)', () => {
    // The native branch is the one under test: the module is there and loads.
    expect(nativeFsPath()).toBe(built);
    const { dir, want, before } = aclDir('native');
    const ctime = statSync(dir).ctimeMs;
    writeXattrs(Buffer.from(dir), want);
    expect(acl(dir)).toBe(before);
    // Nothing removed and set again (the alias is not removed on xfs): an unchanged inode.
    expect(statSync(dir).ctimeMs).toBe(ctime);
    expect(acl(dir)).toMatch(/default:user:nobody:r-x/);
    expect(readXattrs(Buffer.from(dir)).get('user.kept')?.toString()).toBe('yes');
  });

  it('keeps it with @napi-rs/xattr alone (FERRY_NATIVE=0)', () => {
    const { dir, want, before } = aclDir('library');
    const script = `import { writeXattrs } from ${JSON.stringify(distXattrs)};
      const want = new Map(${JSON.stringify([...want].map(([k, v]) => [k, v.toString('base64')]))}.map(([k, v]) => [k, Buffer.from(v, 'base64')]));
      writeXattrs(Buffer.from(${JSON.stringify(dir)}), want);`;
    const ctime = statSync(dir).ctimeMs;
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, FERRY_NATIVE: '0' } });
    expect(acl(dir)).toBe(before);
    expect(statSync(dir).ctimeMs).toBe(ctime);
  });

  it('removes every xattr when none is wanted (names only read), as the library does', () => {
    for (const [name, viaLibrary] of [['none-native', false], ['none-library', true]] as const) {
      const { dir } = aclDir(name);
      if (viaLibrary) {
        const script = `import { writeXattrs } from ${JSON.stringify(distXattrs)}; writeXattrs(Buffer.from(${JSON.stringify(dir)}), undefined);`;
        execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, FERRY_NATIVE: '0' } });
      } else writeXattrs(Buffer.from(dir), new Map());
      expect(rawNames(dir).filter((n) => !n.startsWith('security.')), name).toEqual([]);
      expect(acl(dir), name).not.toMatch(/nobody|default:/);
    }
  });

  it('changes an ACL and removes one that is no longer wanted', () => {
    const { dir, want } = aclDir('changed');
    const other = join(root, 'other');
    mkdirSync(other);
    sh('setfacl', ['-m', 'u:daemon:rwx', other]);
    want.set('system.posix_acl_access', readXattrs(Buffer.from(other)).get('system.posix_acl_access')!);
    want.delete('system.posix_acl_default');
    writeXattrs(Buffer.from(dir), want);
    const now = acl(dir);
    expect(now).toMatch(/^user:daemon:rwx/m);
    expect(now).not.toMatch(/default:/);
  });

  it('never reads trusted.SGI_ACL_*: by path, on an fd, and with @napi-rs/xattr alone', () => {
    const { dir } = aclDir('read');
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    sh('setfacl', ['-m', 'u:daemon:r', file]);
    expect(rawNames(file)).toContain('trusted.SGI_ACL_FILE');
    sh('setfattr', ['-n', 'user.kept', '-v', 'file', file]);
    // What the host adds (a security label) is read too; trusted.SGI_ACL_FILE is not.
    const want = rawNames(file).filter((n) => n !== 'trusted.SGI_ACL_FILE');
    expect(want).toEqual(expect.arrayContaining(['system.posix_acl_access', 'user.kept']));
    expect([...readXattrs(Buffer.from(file)).keys()]).toEqual(want);
    const fd = openSync(file, 'r');
    try {
      expect([...readXattrsFd(fd)!.keys()]).toEqual(want);
    } finally {
      closeSync(fd);
    }
    const script = `import { readXattrs } from ${JSON.stringify(distXattrs)}; console.log(JSON.stringify([...readXattrs(Buffer.from(${JSON.stringify(file)})).keys()]));`;
    const viaLibrary = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, FERRY_NATIVE: '0' }, encoding: 'utf8' });
    expect(JSON.parse(viaLibrary)).toEqual(want);
  });

  it('never writes them onto ext4 (a stream that names them sets the rest), removes one left there, and sets what ext4 takes beside a name it does not (natively and with the library)', async () => {
    const ext4 = LoopDisk.create(64 * 1024 * 1024, 'ferry-xattrs-ext4-');
    try {
      sh('mkfs.ext4', ['-q', '-F', ext4.device]);
      const at = ext4.mount(ext4.device);
      const { dir } = aclDir('sent');
      const sent = new Map<string, Buffer>();
      for (const name of ['system.posix_acl_access', 'trusted.SGI_ACL_FILE', 'user.kept']) {
        const line = sh('getfattr', ['--absolute-names', '-e', 'hex', '-n', name, dir]).split('\n').find((l) => l.startsWith(`${name}=0x`))!;
        sent.set(name, Buffer.from(line.slice(name.length + 3), 'hex'));
      }
      for (const [name, viaLibrary] of [['native', false], ['library', true]] as const) {
        const target = join(at, name);
        writeFileSync(target, '');
        if (viaLibrary) {
          const script = `import { writeXattrs } from ${JSON.stringify(distXattrs)};
            writeXattrs(Buffer.from(${JSON.stringify(target)}), new Map(${JSON.stringify([...sent].map(([k, v]) => [k, v.toString('base64')]))}.map(([k, v]) => [k, Buffer.from(v, 'base64')])));`;
          execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, FERRY_NATIVE: '0' } });
        } else writeXattrs(Buffer.from(target), sent);
        expect(rawNames(target), name).toEqual(['system.posix_acl_access', 'user.kept']);
        expect(sh('getfacl', ['-cp', target]), name).toMatch(/^user:nobody:r-x/m);
      }
      // One left on ext4 by an earlier pass (as a stream that named it made it) goes when the entry is written;
      // the target's own security.evm (a kernel's HMAC, type 2) stays.
      for (const [name, want] of [['left', new Map([['user.kept', Buffer.from('yes')]])], ['left-none', new Map<string, Buffer>()]] as const) {
        const left = join(at, name);
        writeFileSync(left, '');
        sh('setfattr', ['-n', 'trusted.SGI_ACL_FILE', '-v', '0x0102', left]);
        sh('setfattr', ['-n', 'user.kept', '-v', 'yes', left]);
        sh('setfattr', ['-n', 'security.evm', '-v', '0x0201', left]);
        expect(rawNames(left)).toEqual(['security.evm', 'trusted.SGI_ACL_FILE', 'user.kept']);
        writeXattrs(Buffer.from(left), want);
        expect(rawNames(left), name).toEqual(['security.evm', ...want.keys()]);
      }
      // A portable signature (type 5) is ferry's to remove like any copied name; a leftover on a dangling symlink
      // goes too (its file system is its directory's: statfs would follow the link).
      const signed = join(at, 'signed');
      writeFileSync(signed, '');
      sh('setfattr', ['-n', 'security.evm', '-v', '0x0501', signed]);
      writeXattrs(Buffer.from(signed), new Map());
      expect(rawNames(signed)).toEqual([]);
      sh('setfattr', ['-n', 'security.evm', '-v', '0x0501', signed]);
      writeXattrs(Buffer.from(signed), new Map([['user.x', Buffer.from('1')]]));
      expect(rawNames(signed)).toEqual(['user.x']);
      const dangling = join(at, 'dangling');
      symlinkSync('nowhere', dangling);
      sh('setfattr', ['-h', '-n', 'trusted.SGI_ACL_FILE', '-v', '0x0102', dangling]);
      writeXattrs(Buffer.from(dangling), new Map());
      expect(sh('getfattr', ['-h', '--absolute-names', '-m', '-', dangling]).trim()).toBe('');
      // btrfs.compression (a btrfs property, listed as an xattr) is refused by ext4: the names after it are still
      // set, and the error names it.
      for (const [name, viaLibrary] of [['prop-native', false], ['prop-library', true]] as const) {
        const target = join(at, name);
        writeFileSync(target, '');
        const want = [['btrfs.compression', 'zstd'], ['user.after', 'set']];
        const script = `import { writeXattrs } from ${JSON.stringify(distXattrs)};
          try { writeXattrs(Buffer.from(${JSON.stringify(target)}), new Map(${JSON.stringify(want)}.map(([k, v]) => [k, Buffer.from(v)]))); console.log('ok'); }
          catch (e) { console.log(e.message); }`;
        const said = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, FERRY_NATIVE: viaLibrary ? '0' : '1' }, encoding: 'utf8' }).trim();
        expect(said, name).toBe("refused by the target's file system: btrfs.compression (Operation not supported (os error 95))");
        expect(rawNames(target), name).toEqual(['user.after']);
      }
      const large = join(at, 'large');
      writeFileSync(large, '');
      expect(() => writeXattrs(Buffer.from(large), new Map([['user.a-large', Buffer.alloc(8000, 0x61)], ['user.b-after', Buffer.from('set')]]))).toThrow(
        "refused by the target's file system: user.a-large (No space left on device (os error 28))",
      );
      expect(rawNames(large)).toEqual(['user.b-after']);
      let thrown: unknown;
      try {
        writeXattrs(Buffer.from(large), new Map([['user.a-large', Buffer.alloc(8000, 0x61)], ['user.b-after', Buffer.from('set')]]));
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toMatchObject({ code: XATTRS_REFUSED, refused: ['user.a-large'] });
      // The receiver says that only some were not applied, and which, or that none was; an entry none of whose
      // names was refused is not reported.
      const tree = join(at, 'tree');
      mkdirSync(tree);
      const warned: Record<string, unknown>[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => void warned.push(JSON.parse(line) as Record<string, unknown>) });
      const file = (path: string, xattrs: Map<string, Buffer>): TarHeader => ({ path: Buffer.from(path), type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtimeNs: 1_600_000_000_000_000_000n, xattrs });
      const tar = Buffer.concat([
        encodeHeader(file('mixed', new Map([['btrfs.compression', Buffer.from('zstd')], ['user.after', Buffer.from('set')]]))),
        encodeHeader(file('plain', new Map([['user.only', Buffer.from('x')]]))),
        encodeHeader(file('refused', new Map([['btrfs.compression', Buffer.from('zstd')]]))),
        ZERO_BLOCKS,
      ]);
      await new FileExtractor({ root: tree, log }).extract((async function* () {
        yield tar;
      })());
      expect(rawNames(join(tree, 'mixed'))).toEqual(['user.after']);
      expect(rawNames(join(tree, 'plain'))).toEqual(['user.only']);
      expect(warned.map(({ path, err, msg }) => ({ path, err, msg }))).toEqual([
        { path: 'mixed', err: "refused by the target's file system: btrfs.compression (Operation not supported (os error 95))", msg: 'some extended attributes not applied (the rest are)' },
        // Its only name refused: there is no rest.
        { path: 'refused', err: "refused by the target's file system: btrfs.compression (Operation not supported (os error 95))", msg: 'extended attributes not applied' },
      ]);
    } finally {
      ext4.destroy();
    }
  });
});
