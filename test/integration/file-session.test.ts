// File sessions end to end on real sockets and child processes: a pass cut
// in the middle resumes after what the receiver committed instead of
// starting over; a hostile stream sent over the wire is refused by the
// receiver with an error naming the entry (final), bytes damaged in transit
// with one the agent reconnects after; files that vanish or change
// while being read are skipped or resent; CLI exit statuses.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/requirements.js';
import { runFerry } from '../helpers/cli.js';
import { startReceiver, parseSummaries, type RunningReceiver } from '../helpers/block.js';
import { rsyncDiff } from '../helpers/file-tree.js';
import { errorFromFrame, openClientSession } from '../../src/replication/session/connect.js';
import { isRetryable, type FerryError } from '../../src/errors/ferry-error.js';
import type { FrameChannel } from '../../src/protocol/channel.js';
import { encodeFileData, FileFrameType } from '../../src/protocol/file-frames.js';
import { Codec, FrameType, encodeJsonFrame } from '../../src/protocol/frames.js';
import { encodeHeader, ZERO_BLOCKS, bodyPadding } from '../../src/protocol/tar-format.js';
import { hasher } from '../../src/protocol/xxhash.js';
import { TarProducer } from '../../src/replication/file/tar-producer.js';
import { FileExtractor } from '../../src/receiver/file-extractor.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { nativeFsPath } from '../../src/platform/native-fs.js';
import { readXattrs } from '../../src/platform/xattrs-linux.js';
import { setAttributeSync } from '@napi-rs/xattr';

const env = needs({ tools: ['rsync'] });
const envFs = needs({ root: true, tools: ['losetup', 'mkfs.ext4', 'mount'] });

let base: string;
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'ferry-file-session-'));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/**
 * A TCP relay that forwards agent → receiver at about `rate` bytes/s and
 * cuts the first connection as soon as `cutWhen()` says so.
 */
function cuttingProxy(targetPort: number, rate: number, cutWhen: () => boolean): Promise<{ server: Server; port: number; cuts: () => number }> {
  let cuts = 0;
  let first = true;
  const server = createServer((client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const cutThis = first;
    first = false;
    const t0 = Date.now();
    let n = 0;
    const timer = cutThis
      ? setInterval(() => {
          if (cutWhen()) {
            cuts++;
            clearInterval(timer);
            client.destroy();
            upstream.destroy();
          }
        }, 50)
      : undefined;
    client.on('data', (b: Buffer) => {
      n += b.length;
      upstream.write(b);
      const ahead = n / rate - (Date.now() - t0) / 1000;
      if (cutThis && ahead > 0) {
        client.pause();
        setTimeout(() => client.resume(), ahead * 1000);
      }
    });
    upstream.on('data', (b: Buffer) => client.write(b));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => {
      clearInterval(timer);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port, cuts: () => cuts })));
}

describe.runIf(env.ok)('file sessions over the wire', () => {
  let recv: RunningReceiver;
  let dst: string;
  let evilDst: string;
  beforeAll(async () => {
    dst = join(base, 'dst');
    evilDst = join(base, 'evil-dst');
    recv = await startReceiver(join(base, 'receiver'), [`tree=${dst}`, `evil=${evilDst}`]);
  });
  afterAll(async () => {
    await recv?.stop();
  });

  it('resumes a cut pass after the last committed path instead of starting over', async () => {
    const src = join(base, 'src');
    for (let d = 0; d < 10; d++) {
      mkdirSync(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 6; f++) writeFileSync(join(src, `d${d}`, `f${f}.bin`), randomBytes(2 * 1024 * 1024));
    }
    // Slow the first connection down and cut it once the receiver has made a resume point durable.
    const statePath = join(base, 'receiver', 'targets', 'tree', 'file-state.json');
    const committed = () => existsSync(statePath) && /resumeAfter/.test(readFileSync(statePath, 'utf8'));
    const proxy = await cuttingProxy(recv.info.port, 12 * 1024 * 1024, committed);
    try {
      const r = await runFerry(
        ['migrate', '--to', `127.0.0.1:${proxy.port}`, '--token', recv.info.token, '--fingerprint', recv.info.fingerprint, '--files', `${src}=tree`, '--state', join(base, 'agent'), '--json'],
        { env: { FERRY_LOG_LEVEL: 'info' } },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(proxy.cuts()).toBe(1);
      expect(r.stderr).toContain('resuming the interrupted pass');
      const s = parseSummaries(r.stdout)[0]!;
      expect(s.pass).toBe('full');
      // 120 MiB of random data: resuming sends well under twice that.
      expect(s.bytesOnWire).toBeLessThan(200 * 1024 * 1024);
      expect(rsyncDiff(src, dst)).toBe('');
    } finally {
      proxy.server.close();
    }
  });

  it('refuses a hostile stream sent over the wire, naming the entry, writing nothing outside', async () => {
    const { h64Raw } = await hasher();
    const { channel, welcome } = await openClientSession(
      { host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint },
      { kind: 'file', target: 'evil', passId: 'hostile-pass-1' },
    );
    expect(welcome.kind).toBe('file');
    const body = Buffer.from('owned');
    const tar = Buffer.concat([
      encodeHeader({ path: Buffer.from('../escaped'), type: 'file', size: body.length, mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n }),
      body, bodyPadding(body.length), ZERO_BLOCKS,
    ]);
    const error = new Promise<string>((resolve) => channel.onFrame((f) => f.type === FrameType.ERROR && resolve(f.body.toString())));
    await channel.send(encodeFileData({ offset: 0, rawLength: tar.length, codec: Codec.RAW, hash: h64Raw(tar), payload: tar }));
    await channel.send(encodeJsonFrame(FileFrameType.FILE_COMMIT, { id: 0, offset: tar.length }));
    const e = JSON.parse(await error) as { code: string; message: string };
    expect(e.code).toBe('FERRY_UNSAFE_ENTRY');
    expect(e.message).toContain('"../escaped"');
    expect(existsSync(join(base, 'escaped'))).toBe(false);
    expect(readdirSync(evilDst)).toEqual([]);
    channel.destroy();
  });

  it('refuses FILE_DATA whose bytes do not match their hash', async () => {
    const { channel } = await openClientSession(
      { host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint },
      { kind: 'file', target: 'evil', passId: 'hostile-pass-2' },
    );
    const tar = Buffer.concat([ZERO_BLOCKS]);
    const error = new Promise<string>((resolve) => channel.onFrame((f) => f.type === FrameType.ERROR && resolve(f.body.toString())));
    await channel.send(encodeFileData({ offset: 0, rawLength: tar.length, codec: Codec.RAW, hash: 12345n, payload: tar }));
    expect(JSON.parse(await error).message).toMatch(/failed its hash check/);
    channel.destroy();
  });

  it('says a hash mismatch is FERRY_CHUNK_HASH and that the agent may reconnect (it resends), while an unsafe entry is final', async () => {
    const session = () =>
      openClientSession(
        { host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint },
        { kind: 'file', target: 'evil', passId: 'hostile-pass-3' },
      );
    const { h64Raw } = await hasher();
    const errorOf = (channel: FrameChannel) => new Promise<FerryError>((resolve) => channel.onFrame((f) => f.type === FrameType.ERROR && resolve(errorFromFrame(f))));

    const damaged = await session();
    const mismatch = errorOf(damaged.channel);
    await damaged.channel.send(encodeFileData({ offset: 0, rawLength: ZERO_BLOCKS.length, codec: Codec.RAW, hash: 12345n, payload: ZERO_BLOCKS }));
    const e = await mismatch;
    damaged.channel.destroy();
    expect(e.code).toBe('FERRY_CHUNK_HASH');
    expect(isRetryable(e)).toBe(true);

    const hostile = await session();
    const refused = errorOf(hostile.channel);
    const tar = Buffer.concat([encodeHeader({ path: Buffer.from('../escaped-3'), type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n }), ZERO_BLOCKS]);
    await hostile.channel.send(encodeFileData({ offset: 0, rawLength: tar.length, codec: Codec.RAW, hash: h64Raw(tar), payload: tar }));
    await hostile.channel.send(encodeJsonFrame(FileFrameType.FILE_COMMIT, { id: 0, offset: tar.length }));
    const u = await refused;
    hostile.channel.destroy();
    expect(u.code).toBe('FERRY_UNSAFE_ENTRY');
    expect(isRetryable(u)).toBe(false);
  });

  it('exits 2 on a malformed --files and 1 when the receiver has no such target', async () => {
    const args = ['migrate', '--to', `127.0.0.1:${recv.info.port}`, '--token', recv.info.token, '--fingerprint', recv.info.fingerprint, '--state', join(base, 'agent2')];
    expect((await runFerry([...args, '--files', 'no-equals-sign'])).code).toBe(2);
    const r = await runFerry([...args, '--files', `${base}=nosuchtarget`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nosuchtarget/);
  });
});

describe('files that vanish or change while the pass reads them', () => {
  it('skips a vanished file with a warning and resends a changed one on the next pass', async () => {
    const src = join(base, 'vsrc');
    const dst = join(base, 'vdst');
    mkdirSync(src);
    mkdirSync(dst);
    writeFileSync(join(src, 'changes'), 'v1');
    writeFileSync(join(src, 'stays'), 'same');
    writeFileSync(join(src, 'vanishes'), 'soon gone');
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, m: string) => warnings.push(m), info: () => {}, debug: () => {} } as never;
    const manifest = join(base, 'vmanifest');
    const p1 = new TarProducer({
      root: src, manifest, log,
      internals: {
        beforeRead: (p) => {
          if (p.toString() === 'changes') appendFileSync(join(src, 'changes'), ' and v2');
          if (p.toString() === 'vanishes') unlinkSync(join(src, 'vanishes'));
        },
      },
    });
    await new FileExtractor({ root: dst }).extract(p1.stream());
    p1.commitManifest();
    expect(p1.stats.vanished).toBe(1);
    expect(p1.stats.changedWhileRead).toBe(1);
    expect(warnings.some((w) => /vanished/.test(w))).toBe(true);
    expect(warnings.some((w) => /changed while being read/.test(w))).toBe(true);
    // the next pass sends the changed file again, and the root directory (whose
    // mtime moved when the file vanished) — not the unchanged file
    const p2 = new TarProducer({ root: src, manifest, log });
    await new FileExtractor({ root: dst }).extract(p2.stream());
    p2.commitManifest();
    expect(p2.stats.sent).toBe(2);
    expect(p2.stats.unchanged).toBe(1);
    expect(rsyncDiff(src, dst)).toBe('');
  });
});

/**
 * One pass of `src` to `dst` through a TarProducer and a FileExtractor, with no listing ahead (a/b is listed when
 * the walk reaches it); `atFirstRead`, when given, runs once at the read of a/0first (after a's listing, before
 * the headers of what follows it in a). Returns the producer, its manifest committed.
 */
async function hookedPass(src: string, dst: string, manifest: string, log: never, atFirstRead?: () => void): Promise<TarProducer> {
  let ran = false;
  const p = new TarProducer({
    root: src, manifest, log, walk: { threads: 0 },
    internals: {
      beforeRead: (path) => {
        if (!atFirstRead || ran || path.toString() !== 'a/0first') return;
        ran = true;
        atFirstRead();
      },
    },
  });
  await new FileExtractor({ root: dst }).extract(p.stream());
  p.commitManifest();
  if (atFirstRead) expect(ran).toBe(true);
  return p;
}

/** hookedPass of `top`/tree; with `swap`, a becomes a symlink to `top`/elsewhere (a kept as a.real). */
function swapPass(top: string, dst: string, manifest: string, log: never, swap: boolean): Promise<TarProducer> {
  const src = join(top, 'tree');
  return hookedPass(src, dst, manifest, log, swap ? () => {
    renameSync(join(src, 'a'), join(src, 'a.real'));
    symlinkSync(join(top, 'elsewhere'), join(src, 'a'));
  } : undefined);
}

/**
 * `base`/name for the tests that act at a/0first's read: tree/a/0first (and tree/a/`sub`), elsewhere (and
 * elsewhere/`sub`), an empty dst, the manifest's path, and a log whose warnings are kept.
 */
function swapLab(name: string, sub = '') {
  const top = join(base, name);
  const src = join(top, 'tree');
  const dst = join(top, 'dst');
  mkdirSync(join(src, 'a', sub), { recursive: true });
  mkdirSync(join(top, 'elsewhere', sub), { recursive: true });
  mkdirSync(dst);
  writeFileSync(join(src, 'a', '0first'), 'first');
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, m: string) => warnings.push(m), info: () => {}, debug: () => {} } as never;
  return { top, src, dst, manifest: join(top, 'manifest'), warnings, log };
}

describe.runIf(env.ok)('a directory the walk cannot list', () => {
  it('keeps on the receiver what the last pass sent below it, and sends none of what a symlink put above it leads to', async () => {
    // tree/a/0first, tree/a/b/mine; elsewhere/b/secret. A full pass, then a delta during which a becomes a
    // symlink to elsewhere (at the first read in a, before the walk lists a/b): a/b cannot be listed (the
    // native lister refuses the symlink), and its old entries stay as they are.
    expect(nativeFsPath(), 'the native lister (npm run build)').not.toBeNull();
    const { top, src, dst, manifest, warnings, log } = swapLab('unlisted', 'b');
    writeFileSync(join(src, 'a', 'b', 'mine'), 'mine');
    writeFileSync(join(top, 'elsewhere', 'b', 'secret'), 'not in the tree');
    // The other directory's xattrs must not arrive as a/b's either, and a/b's own must stay (its xattrs are read
    // on an fd opened like the listing; a directory replaced since the walk is left for the next pass).
    setAttributeSync(join(top, 'elsewhere', 'b'), 'user.secret', Buffer.from('elsewhere only'));
    setAttributeSync(join(src, 'a', 'b'), 'user.mine', Buffer.from('mine'));
    const pass = (swap: boolean) => swapPass(top, dst, manifest, log, swap);
    await pass(false);
    expect(readFileSync(join(dst, 'a', 'b', 'mine'), 'utf8')).toBe('mine');
    appendFileSync(join(src, 'a', '0first'), ' again');
    // a/b changed too, so that its header (and its xattrs) goes out after the swap.
    chmodSync(join(src, 'a', 'b'), 0o750);
    const p2 = await pass(true);
    expect(warnings.some((w) => /cannot list directory/.test(w))).toBe(true);
    expect(readFileSync(join(dst, 'a', 'b', 'mine'), 'utf8')).toBe('mine');
    expect(existsSync(join(dst, 'a', 'b', 'secret'))).toBe(false);
    expect([...readXattrs(Buffer.from(join(dst, 'a', 'b'))).keys()]).toEqual(['user.mine']);
    expect(warnings.some((w) => /directory replaced since the walk listed it/.test(w))).toBe(true);
    expect(p2.stats.deleted).toBe(0);
    // Put back: the next pass finds a/b/mine as the manifest kept it, and sends nothing for it.
    unlinkSync(join(src, 'a'));
    renameSync(join(src, 'a.real'), join(src, 'a'));
    const p3 = await pass(false);
    expect(rsyncDiff(src, dst)).toBe('');
    expect(p3.stats.deleted).toBe(0);
  });

  it('never makes a file it kept unlisted a hard-link target: a file linked to it arrives with its own new bytes', async () => {
    expect(nativeFsPath(), 'the native lister (npm run build)').not.toBeNull();
    const { top, src, dst, manifest, log } = swapLab('unlisted-link', 'b');
    mkdirSync(join(src, 'z'));
    writeFileSync(join(src, 'a', 'b', 'h'), 'old content');
    linkSync(join(src, 'a', 'b', 'h'), join(src, 'z', 'h'));
    const pass = (swap: boolean) => swapPass(top, dst, manifest, log, swap);
    await pass(false);
    // The same inode, new bytes: z/h changes while a/b (holding its other name) cannot be listed.
    writeFileSync(join(src, 'z', 'h'), 'NEW CONTENT, longer');
    appendFileSync(join(src, 'a', '0first'), ' again');
    await pass(true);
    expect(readFileSync(join(dst, 'z', 'h'), 'utf8')).toBe('NEW CONTENT, longer');
    unlinkSync(join(src, 'a'));
    renameSync(join(src, 'a.real'), join(src, 'a'));
    await pass(false);
    for (const p of [join('a', 'b', 'h'), join('z', 'h')]) expect(readFileSync(join(dst, p), 'utf8'), p).toBe('NEW CONTENT, longer');
  });
});

const envFifo = needs({ root: true, tools: ['mkfifo', 'rsync'] });

describe.runIf(envFifo.ok)('a FIFO below a directory swapped for a symlink', () => {
  it("sends none of the other FIFO's xattrs under its name, and keeps the one the receiver has", async () => {
    // tree/a/0first, tree/a/p (a FIFO with trusted.mine); elsewhere/p, a FIFO with trusted.secret (trusted.*: a
    // FIFO takes no user.* xattrs). a becomes a symlink to elsewhere after a's listing, before p's header.
    expect(nativeFsPath(), 'the native module (npm run build)').not.toBeNull();
    const { top, src, dst, manifest, warnings, log } = swapLab('fifo-swap');
    sh('mkfifo', [join(src, 'a', 'p'), join(top, 'elsewhere', 'p')]);
    chmodSync(join(src, 'a', 'p'), 0o644);
    setAttributeSync(join(src, 'a', 'p'), 'trusted.mine', Buffer.from('mine'));
    setAttributeSync(join(top, 'elsewhere', 'p'), 'trusted.secret', Buffer.from('elsewhere only'));
    const pass = (swap: boolean) => swapPass(top, dst, manifest, log, swap);
    await pass(false);
    expect([...readXattrs(Buffer.from(join(dst, 'a', 'p'))).keys()]).toEqual(['trusted.mine']);
    appendFileSync(join(src, 'a', '0first'), ' again');
    // p changed too, so that its header (and its xattrs) goes out after the swap.
    chmodSync(join(src, 'a', 'p'), 0o600);
    const p2 = await pass(true);
    expect([...readXattrs(Buffer.from(join(dst, 'a', 'p'))).keys()]).toEqual(['trusted.mine']);
    expect(statSync(join(dst, 'a', 'p')).mode & 0o777).toBe(0o644);
    expect(warnings).toContain('directory above it replaced since the walk listed it; sent on the next pass');
    expect(p2.stats.deleted).toBe(0);
    // Put back: the next pass sends p as it now is.
    unlinkSync(join(src, 'a'));
    renameSync(join(src, 'a.real'), join(src, 'a'));
    await pass(false);
    expect(rsyncDiff(src, dst)).toBe('');
    expect(statSync(join(dst, 'a', 'p')).mode & 0o777).toBe(0o600);
  });
});

describe.runIf(envFifo.ok)('a FIFO gone before its header', () => {
  it('is deleted on the receiver when it had changed, as a vanished file is, and not kept in the manifest', async () => {
    const { src, dst, manifest, warnings, log } = swapLab('fifo-gone');
    sh('mkfifo', [join(src, 'a', 'q')]);
    // With `gone`, q goes after a's listing (q in it), before q's header.
    const pass = (gone: boolean) => hookedPass(src, dst, manifest, log, gone ? () => unlinkSync(join(src, 'a', 'q')) : undefined);
    await pass(false);
    expect(existsSync(join(dst, 'a', 'q'))).toBe(true);
    appendFileSync(join(src, 'a', '0first'), ' again');
    chmodSync(join(src, 'a', 'q'), 0o600);
    const p2 = await pass(true);
    expect(warnings).toContain('entry vanished before it could be sent; skipped');
    expect(p2.stats.vanished).toBe(1);
    expect(existsSync(join(dst, 'a', 'q'))).toBe(false);
    const p3 = await pass(false);
    expect(p3.stats.deleted).toBe(0);
    expect(rsyncDiff(src, dst)).toBe('');
  });
});

describe.runIf(envFs.ok)('a directory swapped for a symlink while the pass reads', () => {
  const disks: LoopDisk[] = [];
  afterAll(() => {
    for (const d of disks) d.destroy();
  });

  it('reads through it reach other files, with the same inode numbers on another file system: none is sent', async () => {
    // Two fresh ext4 file systems of one block group each allocate inodes alike: the same names made in the
    // same order get the same inode numbers. The second holds what must not travel.
    const mounts = [0, 1].map(() => {
      const d = LoopDisk.create(32 * 1024 * 1024, 'ferry-swap-');
      disks.push(d);
      sh('mkfs.ext4', ['-q', '-F', '-b', '4096', d.device]);
      return d.mount(d.device);
    });
    for (const [i, m] of mounts.entries()) {
      mkdirSync(join(m, 'tree', 'd'), { recursive: true });
      // A large file (read on its own fd) and a small one (read in a batch: on the reader's worker threads here;
      // the native batch and node:fs's are checked in small-file-reader.test.ts).
      writeFileSync(join(m, 'tree', 'd', 'big'), Buffer.alloc(600 * 1024, i === 0 ? 'o' : 'S'));
      writeFileSync(join(m, 'tree', 'd', 'f'), i === 0 ? 'own words' : 'SECRET words');
    }
    const [a, b] = mounts.map((m) => join(m!, 'tree'));
    for (const n of ['big', 'f']) expect(statSync(join(a!, 'd', n)).ino).toBe(statSync(join(b!, 'd', n)).ino);
    expect(statSync(a!).dev).not.toBe(statSync(b!).dev);

    const dst = join(base, 'swap-dst');
    mkdirSync(dst);
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, m: string) => warnings.push(m), info: () => {}, debug: () => {} } as never;
    let swapped = false;
    const p = new TarProducer({
      root: a!,
      manifest: join(base, 'swap-manifest'),
      log,
      internals: {
        // Once the walk has listed d, and before any of its files is opened: d becomes a symlink to the other's d.
        beforeRead: (path) => {
          if (swapped || !path.toString().startsWith('d/')) return;
          swapped = true;
          renameSync(join(a!, 'd'), join(a!, 'd.real'));
          symlinkSync(join(b!, 'd'), join(a!, 'd'));
        },
      },
    });
    await new FileExtractor({ root: dst }).extract(p.stream());
    expect(swapped).toBe(true);
    // The two files, and d itself: its header comes after the small file's read ahead (and the swap), and d is
    // then a symlink, not the directory the walk listed.
    expect(p.stats.vanished).toBe(3);
    for (const n of ['big', 'f']) expect(existsSync(join(dst, 'd', n)), n).toBe(false);
    expect(warnings.some((w) => /vanished/.test(w))).toBe(true);
  });
});
