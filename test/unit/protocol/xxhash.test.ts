// The process's xxh64 (src/protocol/xxhash.ts) hashes through ferry's
// native module where it was built with xxhash.h, else through
// xxhash-wasm: the two must give the same values, one-shot and running,
// for every length (xxh64's tails of 1-31 bytes, empty input), for bytes at
// any offset of their buffer, and for a stream cut anywhere. The native
// state refuses a buffer of the wrong size or alignment, or one changed
// outside xxh64Update.

import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import xxhash from 'xxhash-wasm';
import { hasher } from '../../../src/protocol/xxhash.js';
import { loadNativeFs } from '../../../src/platform/native-fs.js';
import { needs } from '../../helpers/requirements.js';

const built = fileURLToPath(new URL('../../../dist/native/ferry-fs.node', import.meta.url));
const env = needs({ files: [built] });

describe.runIf(env.ok)('xxh64, native and WebAssembly', () => {
  it('the process hashes natively where the module has xxh64', async () => {
    expect((await hasher()).by).toBe('native');
  });

  it('one-shot: the same value for every length up to 300 bytes, at every offset mod 8, and for 3 MiB', async () => {
    const n = loadNativeFs(built)!;
    const w = await xxhash();
    const data = randomBytes(3 * 1024 * 1024 + 64);
    for (let len = 0; len <= 300; len++) {
      for (const off of [0, 1, 3, 7]) {
        const b = data.subarray(off, off + len);
        expect(n.xxh64!(b)).toBe(w.h64Raw(b));
      }
    }
    expect(n.xxh64!(data.subarray(5, 5 + 3 * 1024 * 1024))).toBe(w.h64Raw(data.subarray(5, 5 + 3 * 1024 * 1024)));
    // A known value (xxhsum -H1 of an empty input): both agree with the reference, not only with each other.
    expect(n.xxh64!(new Uint8Array(0))).toBe(0xef46db3751d8e999n);
  });

  it('running: the same digest however the stream is cut, and the digest so far at any point', async () => {
    const h = await hasher();
    const w = await xxhash();
    const data = randomBytes(2 * 1024 * 1024 + 17);
    for (let round = 0; round < 20; round++) {
      const a = h.create64();
      const b = w.create64();
      let at = 0;
      for (let cut = round; at < data.length; cut++) {
        const len = Math.min(data.length - at, [0, 1, 31, 32, 33, 4096, 65_537, 1 << 20][cut % 8]!);
        a.update(data.subarray(at, at + len));
        b.update(data.subarray(at, at + len));
        at += len;
        if (at % 3 === 0) expect(a.digest()).toBe(b.digest());
      }
      expect(a.digest()).toBe(b.digest());
      expect(a.digest()).toBe(w.h64Raw(data));
    }
    // A stream never updated: the empty input's hash.
    expect(h.create64().digest()).toBe(w.h64Raw(new Uint8Array(0)));
  });

  it('refuses a state of the wrong size or alignment, and data that is not bytes', () => {
    const n = loadNativeFs(built)!;
    const bytes = n.xxh64StateBytes!;
    expect(() => n.xxh64Update!(new Uint8Array(bytes - 1), new Uint8Array(1))).toThrow(TypeError);
    expect(() => n.xxh64Update!(new Uint8Array(bytes + 8).subarray(4, 4 + bytes), new Uint8Array(1))).toThrow(TypeError);
    expect(() => n.xxh64Digest!(new Uint8Array(bytes + 1))).toThrow(TypeError);
    expect(() => n.xxh64!(new Uint16Array(4) as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => n.xxh64!('text' as unknown as Uint8Array)).toThrow(TypeError);
    // A state written to from JS (its count of held-back bytes past 32) is refused, not trusted.
    const state = new Uint8Array(bytes);
    n.xxh64Update!(state, new Uint8Array(5));
    const view = new DataView(state.buffer);
    for (let at = 0; at + 4 <= bytes - 8; at += 4) if (view.getUint32(at, true) === 5) view.setUint32(at, 0x7fffffff, true);
    expect(() => n.xxh64Update!(state, new Uint8Array(100))).toThrow(TypeError);
    expect(() => n.xxh64Digest!(state)).toThrow(TypeError);
  });
});
