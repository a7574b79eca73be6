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
import { FixedBufferSet, readVolume, SameStretch, type SourceRead } from '../../../src/replication/block/source-reader.js';
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

  describe('scanSame: stretches compared with the receiver\'s entries', () => {
    const scanSame = () => {
      const fn = loadNativeFs(built)?.scanSame;
      expect(fn, 'built with readHashed, so with scanSame').toBeTypeOf('function');
      return fn!;
    };
    /** The canonical hashes of the whole file as the receiver's entries (u64 BE), with chunk `off` changed. */
    const entries = (off?: number): Buffer => {
      const list = canonical(data, CS);
      const b = Buffer.alloc(list.length * 8);
      list.forEach((h, i) => b.writeBigUInt64BE(i === off ? h ^ 0x5an : h, i * 8));
      return b;
    };
    const R = READ;

    it('reads alternate reads of a stretch, and stops at the first that differs or is short, its bytes and hashes kept', async () => {
      const fn = scanSame();
      const fd = openSync(file, 'r');
      const limit = (at = data.length) => new BigInt64Array([BigInt(at)]);
      try {
        const buf = Buffer.alloc(R);
        const hashes = Buffer.alloc((R / CS) * 8);
        // Everything as the receiver has it, from both starting reads of a pair.
        for (const start of [0, R]) expect(await fn(fd, buf, start, CS, hashes, 0, 2 * R, data.length, entries(), limit())).toEqual({ at: data.length, got: 0 });
        // Chunk 19 is in read 2 (chunks 16-23): the even reads stop there and lower the shared limit to it; the odd
        // ones do not see it, and with that limit do not read past it either.
        const shared = limit();
        expect(await fn(fd, buf, 0, CS, hashes, 0, 2 * R, data.length, entries(19), shared)).toEqual({ at: 2 * R, got: R });
        expect(shared[0]).toBe(BigInt(2 * R));
        expect(buf.equals(data.subarray(2 * R, 3 * R))).toBe(true);
        expect(asList(hashes, R / CS)).toEqual(canonical(data.subarray(2 * R, 3 * R), CS));
        expect(await fn(fd, buf, R, CS, hashes, 0, 2 * R, data.length, entries(19), shared)).toEqual({ at: 3 * R, got: 0 });
        expect(await fn(fd, buf, R, CS, hashes, 0, 2 * R, data.length, entries(19), limit())).toEqual({ at: data.length, got: 0 });
        // Stopped by the caller: nothing read.
        expect(await fn(fd, buf, 0, CS, hashes, 0, 2 * R, data.length, entries(), limit(0))).toEqual({ at: 0, got: 0 });
        // The last read is short of the claimed end: the file ended.
        const claimed = 5 * R + R / 2;
        const longer = Buffer.concat([entries(), Buffer.alloc(8 * 64)]);
        expect(await fn(fd, buf, 0, CS, hashes, 0, 2 * R, claimed, longer, limit(claimed))).toEqual({ at: 4 * R, got: data.length - 4 * R });
        // A stretch that starts inside the volume: expected[0] is the chunk at base.
        expect(await fn(fd, buf, 3 * R, CS, hashes, 2 * R, R, data.length, entries().subarray(2 * (R / CS) * 8), limit())).toEqual({ at: data.length, got: 0 });
      } finally {
        closeSync(fd);
      }
    });

    it('refuses what it cannot do', () => {
      const fn = scanSame();
      const buf = Buffer.alloc(R);
      const hashes = Buffer.alloc((R / CS) * 8);
      const all = entries();
      const lim = new BigInt64Array([BigInt(data.length)]);
      const call = (...a: unknown[]) => (fn as unknown as (...x: unknown[]) => unknown)(...a);
      expect(() => call(0, buf, 0, CS, hashes, 0, R / 2, data.length, all, lim)).toThrow(RangeError); // a step inside the buffer
      expect(() => call(0, buf, 0, CS, hashes, 0, R, data.length, all.subarray(8), lim)).toThrow(RangeError); // an entry short
      expect(() => call(0, buf, CS / 2, CS, hashes, 0, R, data.length, all, lim)).toThrow(RangeError); // not at a chunk from base
      expect(() => call(0, buf, R, CS, hashes, 2 * R, R, data.length, all, lim)).toThrow(RangeError); // before base
      expect(() => call(0, buf, R, CS, hashes, 0, R, R, all, lim)).toThrow(RangeError); // at the end
      expect(() => call(0, buf, 0, CS, hashes, 0, R, data.length, all, new BigInt64Array(0))).toThrow(RangeError); // no room for the limit
      expect(() => call(0, buf, 0, CS, hashes, 0, R, data.length, all, Buffer.alloc(8))).toThrow(TypeError); // not an int64 cell
      expect(() => call(0, buf, 0, CS, hashes, 0, R, data.length, all)).toThrow(TypeError);
    });

    it('through readVolume: an unchanged stretch comes as one SameStretch; a change as the read that has it, then read by read', async () => {
      const fn = readHashed();
      const run = async (expected: Buffer | undefined) => {
        const set = new FixedBufferSet(6, R);
        const items: Array<string> = [];
        let at = 0;
        const stretches = { scanSame: scanSame(), expected: async (offset: number, length: number) => expected?.subarray((offset / CS) * 8, Math.ceil((offset + length) / CS) * 8) };
        for await (const r of readVolume(file, 0, data.length, set, R, { chunkSize: CS, readHashed: fn, stretches })) {
          expect(r.offset).toBe(at);
          if (r instanceof SameStretch) {
            items.push(`same ${r.offset}+${r.length}`);
            expect(r.expected.length).toBe(Math.ceil(r.length / CS) * 8);
            expect(asList(r.expected, Math.ceil(r.length / CS))).toEqual(canonical(data.subarray(r.offset, r.offset + r.length), CS));
            at += r.length;
            continue;
          }
          items.push(`read ${r.offset}+${r.data.length}`);
          expect(r.data.equals(data.subarray(at, at + r.data.length))).toBe(true);
          expect(asList(r.hashes!, Math.ceil(r.data.length / CS))).toEqual(canonical(r.data, CS));
          at += r.data.length;
          r.release();
        }
        expect(at).toBe(data.length);
        return { items, set };
      };
      const tail = data.length - 4 * R;
      expect((await run(entries())).items).toEqual([`same 0+${data.length}`]);
      expect((await run(entries(19))).items).toEqual([`same 0+${2 * R}`, `read ${2 * R}+${R}`, `read ${3 * R}+${R}`, `read ${4 * R}+${tail}`]);
      // Chunk 9 is in read 1, the odd job's: the even job's read 2, scanned too, is read again.
      expect((await run(entries(9))).items).toEqual([`same 0+${R}`, `read ${R}+${R}`, `read ${2 * R}+${R}`, `read ${3 * R}+${R}`, `read ${4 * R}+${tail}`]);
      // The last chunk (short) differs.
      const last = Math.ceil(data.length / CS) - 1;
      expect((await run(entries(last))).items).toEqual([`same 0+${4 * R}`, `read ${4 * R}+${tail}`]);
      // Nothing to compare with: read by read, as without stretches.
      const plain = await run(undefined);
      expect(plain.items).toEqual([0, 1, 2, 3].map((i) => `read ${i * R}+${R}`).concat(`read ${4 * R}+${tail}`));
      expect(plain.set.allocated).toBeLessThanOrEqual(3);
    });

    it('through readVolume: stretches lie at multiples of 64 MiB in the volume, from a resumed start too, and after one that differed the reads go on read by read', async () => {
      // 130 MiB, sparse, with data at 10, 70 and 129 MiB: stretches [4, 64), [64, 128), [128, 130) MiB.
      const MiB = 1024 * 1024;
      const big = join(dir, 'big.img');
      const fd = openSync(big, 'w');
      ftruncateSync(fd, 130 * MiB);
      for (const at of [10, 70, 129]) writeSync(fd, randomBytes(64 * 1024), 0, 64 * 1024, at * MiB);
      closeSync(fd);
      const bytes = readFileSync(big);
      const list = canonical(bytes, CS);
      const run = async (changed?: number) => {
        const all = Buffer.alloc(list.length * 8);
        list.forEach((h, i) => all.writeBigUInt64BE(i === changed ? h ^ 1n : h, i * 8));
        const asked: string[] = [];
        const stretches = {
          scanSame: scanSame(),
          expected: async (offset: number, length: number) => {
            asked.push(`${offset / MiB}+${length / MiB}`);
            return all.subarray((offset / CS) * 8, Math.ceil((offset + length) / CS) * 8);
          },
        };
        const items: string[] = [];
        let at = 4 * MiB;
        for await (const r of readVolume(big, 4 * MiB, bytes.length, new FixedBufferSet(6, R), R, { chunkSize: CS, readHashed: readHashed(), stretches })) {
          expect(r.offset).toBe(at);
          if (r instanceof SameStretch) {
            items.push(`same ${r.offset / MiB}+${r.length / MiB}`);
            expect(r.expected.equals(all.subarray((r.offset / CS) * 8, ((r.offset + r.length) / CS) * 8))).toBe(true);
            at += r.length;
          } else {
            expect(r.data.equals(bytes.subarray(at, at + r.data.length))).toBe(true);
            at += r.data.length;
            r.release();
          }
        }
        expect(at).toBe(bytes.length);
        return { asked, items };
      };
      expect(await run()).toEqual({ asked: ['4+60', '64+64', '128+2'], items: ['same 4+60', 'same 64+64', 'same 128+2'] });
      // A change at 70 MiB: the second stretch stops at its read there, and the rest of the volume (up to two stretches
      // from that stretch's start) is read read by read.
      const changed = await run((70 * MiB) / CS);
      expect(changed.asked).toEqual(['4+60', '64+64']);
      expect(changed.items).toEqual(['same 4+60', 'same 64+6']);
    });

    it('through readVolume: a pass stopped as a stretch is scanned ends after what matched, its buffers back', async () => {
      const set = new FixedBufferSet(6, R);
      const ac = new AbortController();
      const all = entries();
      const stretches = {
        scanSame: scanSame(),
        signal: ac.signal,
        // The pass stops as the scan is about to start: neither job reads.
        expected: async (offset: number, length: number) => {
          ac.abort();
          return all.subarray((offset / CS) * 8, Math.ceil((offset + length) / CS) * 8);
        },
      };
      const items: unknown[] = [];
      for await (const r of readVolume(file, 0, data.length, set, R, { chunkSize: CS, readHashed: readHashed(), stretches })) items.push(r);
      expect(items).toEqual([]);
      expect(set.allocated).toBe(2);
      // Both buffers are free again: two takes get them back without making more.
      await set.take();
      await set.take();
      expect(set.allocated).toBe(2);
    });

    it('through readVolume: a consumer that stops after a stretch\'s read gets no more, and every buffer goes back', async () => {
      const set = new FixedBufferSet(6, R);
      const given: Buffer[] = [];
      const give = set.give.bind(set);
      set.give = (b: Buffer) => {
        given.push(b);
        give(b);
      };
      const all = entries(19);
      const stretches = { scanSame: scanSame(), expected: async (offset: number, length: number) => all.subarray((offset / CS) * 8, Math.ceil((offset + length) / CS) * 8) };
      const reads = readVolume(file, 0, data.length, set, R, { chunkSize: CS, readHashed: readHashed(), stretches });
      expect((await reads.next()).value).toBeInstanceOf(SameStretch);
      const read = (await reads.next()).value as SourceRead;
      expect(read.offset).toBe(2 * R);
      await reads.return(undefined);
      read.release();
      // Two buffers for the pair: the one read handed out, the other's given back at once.
      expect(set.allocated).toBe(2);
      expect(given).toHaveLength(2);
    });
  });
});
