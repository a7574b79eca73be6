// Our LZ4 block codecs — the system's liblz4 through ferry's native module
// (what runs where it loads), the wasm one (lz4_flex through
// protocol/lz4-wasm.ts, where the native one does not) and the TypeScript
// fallback: lossless, compatible with each other and with lz4-napi (the
// reference implementation) in both directions, and safe on corrupt input.
import { randomBytes } from 'node:crypto';
import { compressSync, uncompressSync } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { fastCodec, lz4Bound, lz4Compress, lz4Decompress, lz4DecompressJs, lz4DecompressWith, makeCompressor } from '../../../src/protocol/lz4-block.js';
import { wasmCodec, type WasmCodec } from '../../../src/protocol/lz4-wasm.js';
import { loadNativeFs } from '../../../src/platform/native-fs.js';
import { needs } from '../../helpers/requirements.js';

// The native module is built by `npm run build`; liblz4 (liblz4-1) is on every Debian system (apt needs it).
const built = fileURLToPath(new URL('../../../dist/native/ferry-fs.node', import.meta.url));
const env = needs({ files: [built] });
const lz4OnHost = /\bliblz4\.so\.1\b/.test(execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }));
const nativeFns = env.ok ? loadNativeFs(built) : null;
const native: WasmCodec | null = nativeFns?.lz4Compress && nativeFns.lz4Decompress ? { compress: nativeFns.lz4Compress, decompress: nativeFns.lz4Decompress } : null;
const wasm = wasmCodec()!;
const compressWith = (c: WasmCodec, src: Buffer) => {
  const out = Buffer.alloc(4 + lz4Bound(src.length));
  return out.subarray(0, c.compress(src, out));
};

const tsCompressor = makeCompressor();
function tsCompress(src: Buffer): Buffer {
  const out = Buffer.alloc(4 + lz4Bound(src.length));
  return out.subarray(0, tsCompressor(src, out));
}

const samples: Record<string, Buffer> = {
  empty: Buffer.alloc(0),
  tiny: Buffer.from('abc'),
  twelve: Buffer.from('aaaaaaaaaaaa'),
  zeros: Buffer.alloc(1 << 20),
  random: randomBytes(300_000),
  text: Buffer.alloc(1 << 20, 'the quick brown fox jumps over the lazy dog 0123456789\n'),
  mixed: Buffer.concat([randomBytes(70_000), Buffer.alloc(70_000, 'xy'), randomBytes(5), Buffer.alloc(100_000, 7), randomBytes(65_600)]),
  longRepeat: Buffer.concat([randomBytes(1000), randomBytes(1000)].flatMap((b) => [b, b, b])),
  // Many short literals and matches, offsets from 1 up (the decoder's four-byte copies and their edges).
  words: Buffer.from(Array.from({ length: 60_000 }, (_, i) => `${['a', 'bb', 'ccc', 'alpha', 'beta'][i % 5]}${i % 97} `).join('')),
};

describe('lz4 block codec', () => {
  it('runs on liblz4 where the native module has it, else on the wasm module (the TypeScript codec is only the last fallback)', () => {
    expect(wasmCodec()).not.toBeNull();
    if (env.ok && lz4OnHost) expect(native).not.toBeNull();
    if (native) expect(fastCodec()!.compress).toBe(native.compress);
    else expect(fastCodec()).toBe(wasmCodec());
  });

  for (const [name, data] of Object.entries(samples)) {
    it(`round-trips ${name} between the native, wasm and TypeScript codecs, each decoding the others' blocks`, () => {
      const blocks = [compressWith(wasm, data), tsCompress(data), lz4Compress(data), ...(native ? [compressWith(native, data)] : [])];
      for (const block of blocks) {
        for (const codec of [wasm, native]) if (codec) expect(lz4DecompressWith(codec, block, data.length).equals(data)).toBe(true);
        expect(lz4DecompressJs(block, data.length).equals(data)).toBe(true);
      }
    });

    it(`round-trips ${name} and interoperates with lz4-napi (native and wasm)`, () => {
      for (const codec of [native, wasm]) {
        if (!codec) continue;
        const ours = compressWith(codec, data);
        expect(lz4DecompressWith(codec, ours, data.length).equals(data)).toBe(true);
        if (data.length > 0) expect(uncompressSync(ours).equals(data)).toBe(true);
        const theirs = compressSync(data);
        expect(lz4DecompressWith(codec, theirs, data.length).equals(data)).toBe(true);
      }
    });
  }

  it("decodes every length near the end of a block (short copies never spill past the output), every codec the others' blocks", () => {
    const text = samples.words!;
    for (let n = 1; n < 300; n += 1) {
      const data = text.subarray(1000 - (n % 7), 1000 - (n % 7) + n);
      const blocks = [compressWith(wasm, data), tsCompress(data), compressSync(data), ...(native ? [compressWith(native, data)] : [])];
      for (const block of blocks) {
        for (const codec of [wasm, native]) if (codec) expect(lz4DecompressWith(codec, block, n).equals(data)).toBe(true);
        expect(lz4DecompressJs(block, n).equals(data)).toBe(true);
      }
    }
  });

  it.runIf(native !== null)('native: refuses an output buffer below the worst case, and words a corrupt block once', () => {
    const data = samples.words!;
    expect(() => native!.compress(data, Buffer.alloc(4 + lz4Bound(data.length) - 1))).toThrow(RangeError);
    expect(() => native!.compress(data, Buffer.alloc(3))).toThrow(RangeError);
    const bad = Buffer.from(compressWith(native!, data));
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    bad.writeUInt32LE(data.length + 1, 0);
    let message = '';
    try {
      lz4Decompress(bad, data.length + 1);
    } catch (e) {
      expect((e as { code?: string }).code).toBe('FERRY_CHUNK_CORRUPT');
      message = (e as Error).message;
    }
    expect(message.match(/corrupt/g)).toHaveLength(1);
  });

  it('compresses like lz4: zeros and text shrink a lot, random grows by a few bytes at most', () => {
    expect(lz4Compress(samples.zeros!).length).toBeLessThan(5000);
    expect(lz4Compress(samples.text!).length).toBeLessThan(samples.text!.length / 50);
    expect(lz4Compress(samples.random!).length).toBeLessThan(samples.random!.length + 1300);
  });

  const decoders: [string, (data: Uint8Array, expected: number) => Buffer][] = [
    ['wasm', (d, n) => lz4DecompressWith(wasm, d, n)],
    ['TypeScript', lz4DecompressJs],
    ...(native ? [['native (liblz4)', (d: Uint8Array, n: number) => lz4DecompressWith(native, d, n)] as [string, (data: Uint8Array, expected: number) => Buffer]] : []),
  ];
  for (const [name, decode] of decoders) {
    it(`refuses corrupt input without reading or writing out of bounds (${name})`, () => {
      const good = lz4Compress(samples.mixed!);
      expect(() => decode(good, samples.mixed!.length + 1)).toThrow(/size prefix/);
      expect(() => decode(good.subarray(0, 3), samples.mixed!.length)).toThrow(/too short/);
      expect(() => decode(good.subarray(0, good.length - 10), samples.mixed!.length)).toThrow(/corrupt/);
      let refused = 0;
      for (let i = 0; i < 300; i++) {
        const bad = Buffer.from(good);
        const at = 4 + ((i * 7919) % (bad.length - 4));
        bad[at] = bad[at]! ^ (1 << (i % 8));
        if (i % 3 === 0) bad[4 + ((i * 104729) % (bad.length - 4))] = 0xff; // long length runs
        try {
          const out = decode(bad, samples.mixed!.length);
          expect(out.length).toBe(samples.mixed!.length);
        } catch (e) {
          expect((e as { code?: string }).code).toBe('FERRY_CHUNK_CORRUPT');
          refused++;
        }
      }
      expect(refused).toBeGreaterThan(0);
      // Random garbage behind a plausible size prefix, and the codec still works afterwards.
      for (let i = 0; i < 50; i++) {
        const junk = randomBytes(1 + (i * 37) % 3000);
        const framed = Buffer.concat([Buffer.from([0, 0, 1, 0]), junk]);
        try {
          expect(decode(framed, 65536).length).toBe(65536);
        } catch (e) {
          expect((e as { code?: string }).code).toBe('FERRY_CHUNK_CORRUPT');
        }
      }
      expect(decode(good, samples.mixed!.length).equals(samples.mixed!)).toBe(true);
    });
  }

  it('decodes into a buffer it is given when that is large enough', () => {
    const data = samples.mixed!;
    const into = Buffer.alloc(data.length + 100, 0xee);
    const out = lz4Decompress(lz4Compress(data), data.length, into);
    expect(out.buffer).toBe(into.buffer);
    expect(out.byteOffset).toBe(into.byteOffset);
    expect(out.equals(data)).toBe(true);
    const small = Buffer.alloc(10);
    const fresh = lz4Decompress(lz4Compress(data), data.length, small);
    expect(fresh.buffer).not.toBe(small.buffer);
    expect(fresh.equals(data)).toBe(true);
  });
});
