// A peer holding a valid join token sends hostile file-level data to a real
// `ferry receive` child process. Each attack ends that session with a
// precise error (or a harmless answer), leaves nothing outside the target
// and no temporary file inside it, and the receiver stays alive and serves
// a legitimate migration afterwards (the copy identical by sha256):
// - bad pax values (ids out of range or not numbers, a 400-digit mtime,
//   FERRY.size too large, FERRY.map without or past FERRY.size);
// - pax headers piled up before one entry past the 1 MiB bound;
// - FILE_HASH_REQUEST for a FIFO the session made (it must not block);
// - the target's directory replaced by a symlink while its session runs
//   (the session keeps writing into the directory it opened);
// - targets nested as plain directories (refused at start).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/requirements.js';
import { runFerry } from '../helpers/cli.js';
import { startReceiver, type RunningReceiver } from '../helpers/block.js';
import { migrateFiles } from '../helpers/file-pass.js';
import { treeDigest } from '../helpers/file-tree.js';
import { sh } from '../helpers/loop.js';
import { openClientSession } from '../../src/replication/session/connect.js';
import { decodeFileHashes, encodeFileData, FileFrameType } from '../../src/protocol/file-frames.js';
import { Codec, FrameType, encodeJsonFrame, type RawFrame } from '../../src/protocol/frames.js';
import { encodeHeader, bodyPadding, type TarHeader } from '../../src/protocol/tar-format.js';
import { hasher } from '../../src/protocol/xxhash.js';

const env = needs({ root: true, tools: ['mount', 'umount'] });

const B = (s: string) => Buffer.from(s);
const entry = (path: string, extra: Partial<TarHeader> = {}): TarHeader => ({
  path: B(path), type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtimeNs: 1_600_000_000_000_000_000n, ...extra,
});

/** One pax record, "<len> <key>=<value>\n". */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = body.length + String(body.length).length;
  if (String(len).length !== String(body.length).length) len = body.length + String(len).length;
  return B(`${len}${body}`);
}

/** A pax 'x' header block (ustar header + records + padding), built by hand so any value can be sent. */
function xHeader(records: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write('PaxHeaders/x', 0, 'latin1');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(`${records.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h[156] = 0x78;
  h.write('ustar\u000000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return Buffer.concat([h, records, Buffer.alloc((512 - (records.length % 512)) % 512)]);
}

/** A file entry whose pax records are overridden by `records` (a second x header right before the ustar one: later records win). */
function entryWithPax(h: TarHeader, records: [string, string][], body = ''): Buffer {
  const b = B(body);
  const enc = encodeHeader({ ...h, size: b.length });
  const extra = xHeader(Buffer.concat(records.map(([k, v]) => paxRecord(k, v))));
  return Buffer.concat([enc.subarray(0, enc.length - 512), extra, enc.subarray(enc.length - 512), b, bodyPadding(b.length)]);
}

function tarOf(...parts: [TarHeader, string?][]): Buffer {
  const out: Buffer[] = [];
  for (const [h, body = ''] of parts) {
    const b = B(body);
    out.push(encodeHeader({ ...h, size: h.type === 'file' ? b.length : 0 }), b, bodyPadding(b.length));
  }
  return Buffer.concat(out);
}

/** Names of ferry temporary files anywhere under dir. */
function temporaries(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (n.startsWith('.ferry-tmp-')) out.push(p);
    else if (lstatSync(p).isDirectory()) out.push(...temporaries(p));
  }
  return out;
}

describe.runIf(env.ok)('a file-level peer with a valid token sending hostile data', () => {
  let base: string;
  let recv: RunningReceiver;
  let outside: string;
  let legitSrc: string;
  let legitRuns = 0;
  const dirs: Record<string, string> = {};

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ferry-rx-hostile-data-'));
    outside = join(base, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'precious'), 'keep me');
    for (const name of ['tree', 'evil', 'pin']) dirs[name] = join(base, name);
    legitSrc = join(base, 'legit-src');
    mkdirSync(join(legitSrc, 'd'), { recursive: true });
    writeFileSync(join(legitSrc, 'a.bin'), randomBytes(3 * 1024 * 1024));
    writeFileSync(join(legitSrc, 'd', 'b.txt'), 'a small file\n');
    recv = await startReceiver(join(base, 'receiver'), Object.entries(dirs).map(([n, p]) => `${n}=${p}`));
  });
  afterAll(async () => {
    await recv?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const address = () => ({ host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint });

  /** A session on `target` that sends raw tar bytes; replies are collected in arrival order. */
  async function hostile(target: string, passId: string) {
    const { h64Raw, create64 } = await hasher();
    const { channel } = await openClientSession(address(), { kind: 'file', target, passId });
    const frames: RawFrame[] = [];
    const waiters: (() => void)[] = [];
    channel.onFrame((f) => {
      frames.push(f);
      for (const w of waiters.splice(0)) w();
    });
    const closed = channel.whenClosed().then(() => {
      for (const w of waiters.splice(0)) w();
    });
    let offset = 0;
    let commitId = 0;
    const digest = create64();
    return {
      channel,
      /** Sends tar bytes in FILE_DATA frames of at most 1 MiB, then a FILE_COMMIT (stops quietly once the receiver has closed). */
      async send(tar: Buffer): Promise<void> {
        try {
          for (let o = 0; o < tar.length; o += 1 << 20) {
            const raw = tar.subarray(o, Math.min(tar.length, o + (1 << 20)));
            digest.update(raw);
            await channel.send(encodeFileData({ offset, rawLength: raw.length, codec: Codec.RAW, hash: h64Raw(raw), payload: raw }));
            offset += raw.length;
          }
          await channel.send(encodeJsonFrame(FileFrameType.FILE_COMMIT, { id: commitId++, offset }));
        } catch (e) {
          if (!channel.closed) throw e;
        }
      },
      async end(): Promise<void> {
        await channel.send(encodeJsonFrame(FileFrameType.FILE_END, { offset, digest: digest.digest().toString(16).padStart(16, '0') }));
      },
      /** The next frame of `type` (or an ERROR), by arrival order. */
      async next(type: number): Promise<RawFrame> {
        for (;;) {
          const i = frames.findIndex((f) => f.type === type || f.type === FrameType.ERROR);
          if (i >= 0) return frames.splice(i, 1)[0]!;
          if (channel.closed) throw new Error(`connection closed before a frame of type ${type}`);
          await new Promise<void>((r) => waiters.push(r));
        }
      },
      closed,
    };
  }

  /** The receiver is alive and serves a legitimate migration: the copy is identical by sha256. */
  async function servesLegitimateMigration(): Promise<void> {
    expect(recv.child.exitCode).toBeNull();
    rmSync(dirs.tree!, { recursive: true, force: true });
    const s = await migrateFiles(recv.info, legitSrc, 'tree', join(base, `agent-${legitRuns++}`));
    expect(s.pass).toBe('full');
    expect(treeDigest(dirs.tree!)).toEqual(treeDigest(legitSrc));
  }

  function nothingOutside(): void {
    expect(readdirSync(outside)).toEqual(['precious']);
    expect(readFileSync(join(outside, 'precious'), 'utf8')).toBe('keep me');
  }

  it('refuses bad pax values naming the entry and the field, closing once and removing its temporary files', async () => {
    const TiB10 = String(10 * 2 ** 40);
    const cases: { name: string; tar: Buffer; error: RegExp }[] = [
      { name: 'uid past uid_t', tar: entryWithPax(entry('u1'), [['uid', '4294967296']], 'x'), error: /entry #0 \("u1"\): pax uid "4294967296" is not a number from 0 to 4294967294/ },
      { name: 'uid not a number', tar: entryWithPax(entry('u2'), [['uid', 'abc']], 'x'), error: /entry #0 \("u2"\): pax uid "abc" is not a number/ },
      { name: 'gid negative', tar: entryWithPax(entry('g1'), [['gid', '-5']], 'x'), error: /entry #0 \("g1"\): pax gid "-5" is not a number/ },
      { name: '400-digit mtime', tar: entryWithPax(entry('m1'), [['mtime', '9'.repeat(400)]], 'x'), error: /entry #0 \("m1"\): pax mtime "9{40}" is not seconds/ },
      { name: 'size 2^60', tar: entryWithPax(entry('s1'), [['size', (2n ** 60n).toString()]]), error: /entry #0 \("s1"\): pax size "1152921504606846976" is not a byte count/ },
      { name: 'FERRY.size 2^60', tar: tarOf([entry('f1', { ferry: { map: '0+1', size: (2n ** 60n).toString() } }), 'x']), error: /tar entry "f1": FERRY.size "1152921504606846976" is not a byte count up to 1125899906842624/ },
      { name: 'FERRY.size 2^53-1', tar: tarOf([entry('f2', { ferry: { map: '0+1', size: String(2 ** 53 - 1) } }), 'x']), error: /tar entry "f2": FERRY.size "9007199254740991" is not a byte count/ },
      { name: 'FERRY.map without FERRY.size', tar: tarOf([entry('f3', { ferry: { map: `${TiB10}+1` } }), 'x']), error: /tar entry "f3": FERRY.map without FERRY.size/ },
      { name: 'FERRY.map past FERRY.size', tar: tarOf([entry('f4', { ferry: { map: `0+1,${TiB10}+1`, size: '4096' } }), 'xy']), error: /tar entry "f4": FERRY.map: range map out of order or past the file size/ },
    ];
    let n = 0;
    for (const c of cases) {
      const s = await hostile('evil', `bad-pax-${n++}-pass`);
      await s.send(c.tar);
      const f = await s.next(FileFrameType.FILE_ACK);
      if (f.type !== FrameType.ERROR) {
        // Acknowledged before the extractor reached the entry: the error follows.
        const e = await s.next(FrameType.ERROR);
        f.body = e.body;
      }
      const e = JSON.parse(f.body.toString()) as { code: string; message: string };
      expect(e.code, c.name).toBe('FERRY_BAD_TAR');
      expect(e.message, c.name).toMatch(c.error);
      expect(e.message, c.name).not.toMatch(/EBADF/);
      await s.closed;
    }
    // A FERRY.size within bounds that the file system cannot hold (ext4 stops at 16 TiB): the
    // system's error, naming the entry, after the temporary file existed; it is removed.
    const s = await hostile('evil', 'too-big-for-fs-pass');
    await s.send(tarOf([entry('big', { ferry: { map: '0+1', size: String(2 ** 49) } }), 'x']));
    let f = await s.next(FileFrameType.FILE_ACK);
    if (f.type !== FrameType.ERROR) f = await s.next(FrameType.ERROR);
    const e = JSON.parse(f.body.toString()) as { code: string; message: string };
    expect(e.message).toMatch(/tar entry "big": EFBIG/);
    expect(e.message).not.toMatch(/EBADF/);
    await s.closed;

    expect(temporaries(dirs.evil!)).toEqual([]);
    expect(readdirSync(dirs.evil!)).toEqual([]);
    nothingOutside();
    await servesLegitimateMigration();
  });

  it('bounds the pax headers before one entry: a pile of headers each under 1 MiB ends the session', async () => {
    const s = await hostile('evil', 'pax-pile-pass');
    const big = xHeader(paxRecord('FERRY.pad', 'p'.repeat(600 * 1024)));
    // 8 headers of 600 KiB: the second already passes the 1 MiB the entry may carry.
    await s.send(Buffer.concat([...Array.from({ length: 8 }, () => big), encodeHeader(entry('after-pile'))]));
    let f = await s.next(FileFrameType.FILE_ACK);
    if (f.type !== FrameType.ERROR) f = await s.next(FrameType.ERROR);
    const e = JSON.parse(f.body.toString()) as { code: string; message: string };
    expect(e.code).toBe('FERRY_BAD_TAR');
    expect(e.message).toMatch(/entry #0 \("PaxHeaders\/x"\): pax headers before one entry add up to \d+ bytes, past the 1048576-byte limit/);
    await s.closed;
    expect(existsSync(join(dirs.evil!, 'after-pile'))).toBe(false);
    await servesLegitimateMigration();
  });

  it('answers a hash request for a FIFO at once (no regular file there) and keeps serving others meanwhile', async () => {
    const s = await hostile('evil', 'fifo-hash-pass');
    await s.send(tarOf([entry('pipe', { type: 'fifo', mode: 0o644 })], [entry('plain'), 'plain content']));
    expect((await s.next(FileFrameType.FILE_ACK)).type).toBe(FileFrameType.FILE_ACK);
    // The FIFO is there once the extractor passes 'plain' (the resume point moves past it).
    for (let i = 0; i < 200 && !existsSync(join(dirs.evil!, 'plain')); i++) await new Promise((r) => setTimeout(r, 25));
    expect(lstatSync(join(dirs.evil!, 'pipe')).isFIFO()).toBe(true);
    const hashes = (async () => {
      await s.channel.send(encodeJsonFrame(FileFrameType.FILE_HASH_REQUEST, { id: 7, path: B('pipe').toString('base64') }));
      await s.channel.send(encodeJsonFrame(FileFrameType.FILE_HASH_REQUEST, { id: 8, path: B('plain').toString('base64') }));
      return [decodeFileHashes((await s.next(FileFrameType.FILE_HASHES)).body), decodeFileHashes((await s.next(FileFrameType.FILE_HASHES)).body)];
    })();
    // Another client is served while the request is handled.
    await servesLegitimateMigration();
    const [fifo, plain] = await hashes;
    expect(fifo).toEqual({ id: 7, hashes: null });
    expect(plain!.id).toBe(8);
    expect(plain!.hashes?.length).toBe(8); // one piece of 64 KiB
    s.channel.destroy();
  });

  it('keeps a session in the directory it opened when its path is replaced by a symlink meanwhile', async () => {
    const pin = dirs.pin!;
    const s = await hostile('pin', 'pinned-root-pass');
    await s.send(tarOf([entry('.', { type: 'dir', mode: 0o755 })], [entry('first'), 'before the swap']));
    expect((await s.next(FileFrameType.FILE_ACK)).type).toBe(FileFrameType.FILE_ACK);
    for (let i = 0; i < 200 && !existsSync(join(pin, 'first')); i++) await new Promise((r) => setTimeout(r, 25));
    // What a session on an enclosing target could do: move the directory away, put a symlink in its place.
    renameSync(pin, `${pin}-moved`);
    symlinkSync(outside, pin);
    await s.send(tarOf([entry('second'), 'after the swap'], [entry('precious'), 'overwritten?']));
    expect((await s.next(FileFrameType.FILE_ACK)).type).toBe(FileFrameType.FILE_ACK);
    await s.end();
    const done = await s.next(FileFrameType.FILE_DONE);
    expect(done.type, done.body.toString()).toBe(FileFrameType.FILE_DONE);
    s.channel.destroy();
    nothingOutside();
    expect(readFileSync(join(`${pin}-moved`, 'second'), 'utf8')).toBe('after the swap');
    expect(readFileSync(join(`${pin}-moved`, 'precious'), 'utf8')).toBe('overwritten?');
    await servesLegitimateMigration();
  });

  it('refuses at start targets nested as plain directories, and accepts a nested mount point', async () => {
    const t = join(base, 'nest');
    mkdirSync(join(t, 'home'), { recursive: true });
    const args = ['receive', '--listen', '127.0.0.1:0', '--data', join(base, 'nest-rx'), '--target', `root=${t}`, '--target', `home=${t}/home`];
    const r = await runFerry(args, { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/target home \(.*\/nest\/home\) lies inside target root \(.*\/nest\) and is not a mount point/);
    sh('mount', ['--bind', join(t, 'home'), join(t, 'home')]);
    try {
      const ok = await startReceiver(join(base, 'nest-rx2'), [`root=${t}`, `home=${t}/home`]);
      expect(ok.child.exitCode).toBeNull();
      await ok.stop();
    } finally {
      sh('umount', [join(t, 'home')]);
    }
  });
});
