// Block reads hashed where they are read: the native module's readHashed
// (src/native/ferry-fs.c) against the canonical chunk hash of
// protocol/chunk-hash.ts (zeros, data, a short last chunk, odd chunk sizes,
// the end of the file, a sparse file's holes), its errors and refusals; readVolume with it (the
// same hashes as the chunker computes, SMS.0805 for a short source, a
// consumer that stops with reads in flight or waiting for a buffer); and the
// chunker given known hashes making the same runs as hashing itself.
// (A chunk whose xxh64 is 0 or 1, moved to 2 or 3, cannot be made to order.)
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadChunkHasher, UNKNOWN_HASH } from '../../../src/protocol/chunk-hash.js';
import { loadNativeFs, type NativeReadHashed } from '../../../src/platform/native-fs.js';
import { chunkRead } from '../../../src/replication/block/chunker.js';
import { FixedBufferSet, readVolume, type SourceRead } from '../../../src/replication/block/source-reader.js';
import { needs } from '../../helpers/requirements.js';

const built = fileURLToPath(new URL('../../../dist/native/ferry-fs.node', import.meta.url));
// The build compiles readHashed in where the compiler finds xxhash.h 0.7.3 or later (Debian's
// libxxhash-dev, which .ci/run installs): under FERRY_REQUIRE_PRIVILEGED=1 the module must have it.
const env = needs({ files: [built] });
const has = env.ok && typeof loadNativeFs(built)?.readHashed === 'function';
if (env.ok && !has) {
  if (process.env.FERRY_REQUIRE_PRIVILEGED === '1') throw new Error('the native module has no readHashed: build it with xxhash.h (Debian: libxxhash-dev)');
  process.stderr.write('skipped: the native module was built without xxhash.h (no readHashed)\n');
}
const CS = 32 * 1024;
const READ = 8 * CS;

describe.runIf(has)('readHashed', async () => {
  const hasher = await loadChunkHasher();
  const readHashed = (): NativeReadHashed => {
    const fn = loadNativeFs(built)?.readHashed;
    expect(fn, 'the module was built with xxhash.h, so it has readHashed').toBeTypeOf('function');
    return fn!;
  };
  const dir = mkdtempSync(join(tmpdir(), 'ferry-read-hashed-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // Data, zeros, data with one non-zero byte at the end of a zero chunk, then a short tail: 4 reads and a bit.
  const oneByte = Buffer.alloc(CS);
  oneByte[CS - 1] = 7;
  const data = Buffer.concat([randomBytes(3 * CS), Buffer.alloc(10 * CS), oneByte, randomBytes(18 * CS), Buffer.alloc(CS), randomBytes(1000)]);
  const file = join(dir, 'volume.img');
  writeFileSync(file, data);
  const canonical = (bytes: Buffer, cs: number): bigint[] => {
    const out: bigint[] = [];
    for (let at = 0; at < bytes.length; at += cs) out.push(hasher.hash(bytes.subarray(at, at + cs)));
    return out;
  };
  const asList = (hashes: Buffer, n: number): bigint[] => Array.from({ length: n }, (_, i) => hashes.readBigUInt64BE(i * 8));

  it("reads a range and gives every chunk's canonical hash, to the end of the file, at any chunk size", async () => {
    const fn = readHashed();
    const fd = openSync(file, 'r');
    try {
      for (const cs of [CS, 4096, 1000, 1]) {
        const at = cs === 1 ? data.length - 40 : 2 * CS;
        const buf = Buffer.alloc(Math.min(READ, data.length - at));
        const hashes = Buffer.alloc(Math.ceil(buf.length / cs) * 8);
        expect(await fn(fd, buf, at, cs, hashes)).toBe(buf.length);
        expect(buf.equals(data.subarray(at, at + buf.length))).toBe(true);
        expect(asList(hashes, hashes.length / 8)).toEqual(canonical(buf, cs));
      }
      // Past the end: what is there (the short last chunk hashed as what it is), then nothing.
      const tail = Buffer.alloc(READ);
      const hashes = Buffer.alloc(8 * 8);
      const got = await fn(fd, tail, data.length - CS - 1000, CS, hashes);
      expect(got).toBe(CS + 1000);
      expect(asList(hashes, 2)).toEqual(canonical(data.subarray(data.length - CS - 1000), CS));
      expect(await fn(fd, tail, data.length + 5, CS, hashes)).toBe(0);
    } finally {
      closeSync(fd);
    }
  });

  it("a sparse file's holes come back as zeros without being read, its data as it is, a hole at the end included", async () => {
    const fn = readHashed();
    const sparse = join(dir, 'sparse.img');
    // hole | 5000 bytes of data across a chunk boundary | hole | 1 byte | hole to the end (past the last read).
    const fd0 = openSync(sparse, 'w');
    const bits = randomBytes(5000);
    writeSync(fd0, bits, 0, bits.length, 3 * CS - 1000);
    writeSync(fd0, Buffer.from([9]), 0, 1, 7 * CS + 5);
    ftruncateSync(fd0, 40 * CS + 123);
    closeSync(fd0);
    const whole = readFileSync(sparse);
    const fd = openSync(sparse, 'r');
    try {
      for (const at of [0, 2 * CS, 8 * CS, 32 * CS + 123]) {
        const buf = Buffer.alloc(READ, 0xaa); // not zeros: every byte must be written
        const hashes = Buffer.alloc((READ / CS) * 8);
        const got = await fn(fd, buf, at, CS, hashes);
        const want = Math.min(READ, whole.length - at);
        expect(got).toBe(want);
        expect(buf.subarray(0, got).equals(whole.subarray(at, at + got))).toBe(true);
        expect(asList(hashes, Math.ceil(got / CS))).toEqual(canonical(whole.subarray(at, at + got), CS));
      }
    } finally {
      closeSync(fd);
    }
  });

  it('rejects as node:fs does when the read fails, and refuses arguments that do not fit', async () => {
    const fn = readHashed();
    const dirFd = openSync(dir, 'r'); // a directory: read gives EISDIR
    try {
      await expect(fn(dirFd, Buffer.alloc(CS), 0, CS, Buffer.alloc(8))).rejects.toMatchObject({ code: 'EISDIR', errno: -21, syscall: 'read' });
    } finally {
      closeSync(dirFd);
    }
    const ok = openSync(file, 'r');
    try {
      const refused: [number, Uint8Array, number, number, Uint8Array][] = [
        [ok, Buffer.alloc(CS + 1), 0, CS, Buffer.alloc(8)], // two chunks, one hash's room
        [ok, Buffer.alloc(0), 0, CS, Buffer.alloc(8)], // nothing to read
        [ok, Buffer.alloc(CS), -1, CS, Buffer.alloc(8)],
        [ok, Buffer.alloc(CS), 0.5, CS, Buffer.alloc(8)],
        [ok, Buffer.alloc(CS), 2 ** 53, CS, Buffer.alloc(8)],
        [ok, Buffer.alloc(CS), 0, 0, Buffer.alloc(8)],
        [ok, Buffer.alloc(CS), 0, 1.5, Buffer.alloc(64)],
        [-1, Buffer.alloc(CS), 0, CS, Buffer.alloc(8)],
        [NaN, Buffer.alloc(CS), 0, CS, Buffer.alloc(8)], // not fd 0
        [2 ** 32 + ok, Buffer.alloc(CS), 0, CS, Buffer.alloc(8)], // not fd `ok`
        [ok + 0.5, Buffer.alloc(CS), 0, CS, Buffer.alloc(8)],
      ];
      for (const args of refused) expect(() => fn(...args), String(args.slice(2))).toThrow(RangeError);
      expect(() => fn(ok, new Uint16Array(4) as unknown as Uint8Array, 0, CS, Buffer.alloc(8))).toThrow(TypeError);
      expect(() => (fn as unknown as (...a: unknown[]) => unknown)(ok, Buffer.alloc(CS), 0, CS)).toThrow(TypeError);
    } finally {
      closeSync(ok);
    }
  });

  it('through readVolume: each read carries the hashes the chunker computes, and the chunker makes the same runs from them', async () => {
    const fn = readHashed();
    const set = new FixedBufferSet(6, READ);
    let at = 0;
    for await (const r of readVolume(file, 0, data.length, set, READ, { chunkSize: CS, readHashed: fn })) {
      expect(r.offset).toBe(at);
      expect(r.data.equals(data.subarray(at, at + r.data.length))).toBe(true);
      const n = Math.ceil(r.data.length / CS);
      expect(asList(r.hashes!, n)).toEqual(canonical(r.data, CS));
      // Against an unknown manifest and against one that holds every other chunk already.
      const own = chunkRead(r.data, r.offset, CS, () => UNKNOWN_HASH, hasher, 2 * CS);
      expect(chunkRead(r.data, r.offset, CS, () => UNKNOWN_HASH, hasher, 2 * CS, r.hashes)).toEqual(own);
      const half = (i: number) => (i % 2 === 0 ? own.hashes.readBigUInt64BE(i * 8) : UNKNOWN_HASH);
      expect(chunkRead(r.data, r.offset, CS, half, hasher, 2 * CS, r.hashes)).toEqual(chunkRead(r.data, r.offset, CS, half, hasher, 2 * CS));
      at += r.data.length;
      r.release();
    }
    expect(at).toBe(data.length);
  });

  it('through readVolume: a source shorter than it claims is SMS.0805, and its buffer goes back', async () => {
    const set = new FixedBufferSet(4, READ);
    const run = async () => {
      for await (const r of readVolume(file, 0, data.length + 3 * READ, set, READ, { chunkSize: CS, readHashed: readHashed() })) r.release();
    };
    await expect(run()).rejects.toMatchObject({ code: 'SMS.0805' });
  });

  it('a consumer that stops with reads in flight, or one waiting for a buffer, ends, and the file closes only after the reads', async () => {
    const fn = readHashed();
    for (const hold of [false, true]) {
      // Each read the module starts is held until `go` opens: the file must stay open until they finish.
      let running = 0;
      let open!: () => void;
      const go = new Promise<void>((r) => (open = r));
      let gated = false;
      const slow: NativeReadHashed = async (...args) => {
        running += 1;
        try {
          const n = await fn(...args);
          if (gated) await go;
          return n;
        } finally {
          running -= 1;
        }
      };
      const set = new FixedBufferSet(3, READ);
      const held: SourceRead[] = [];
      const reads = readVolume(file, 0, data.length, set, READ, { chunkSize: CS, readHashed: slow });
      // Holding: the first two reads and the one ahead use all three buffers; the next read waits for one.
      const first = (await reads.next()).value as SourceRead;
      if (hold) held.push(first, (await reads.next()).value as SourceRead);
      else first.release();
      gated = true;
      await new Promise((r) => setTimeout(r, 20));
      let ended = false;
      const stopping = reads.return(undefined).then(() => (ended = true));
      await new Promise((r) => setTimeout(r, 50));
      if (running > 0) expect(ended, 'ended while a read was running').toBe(false);
      open();
      await stopping;
      expect(running).toBe(0);
      for (const r of held) r.release();
      await new Promise((r) => setTimeout(r, 20));
      expect(set.allocated).toBeLessThanOrEqual(3);
    }
    expect(existsSync(file)).toBe(true);
  });
});
