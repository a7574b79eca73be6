// The receiver's byte queue with pooled buffers: a buffer pushed with a
// release is given back once the tar parser has moved past it, and the
// parser keeps nothing of it by then. Shown with a "pool" that overwrites
// every buffer the moment it is given back: the parsed paths, link targets
// and bodies must still be the stream's.
import { describe, expect, it } from 'vitest';
import { ByteQueue } from '../../../src/receiver/byte-queue.js';
import { bodyPadding, encodeHeader, parseTar, parseTarBatches, ZERO_BLOCKS, type TarHeader } from '../../../src/protocol/tar-format.js';

const B = (s: string) => Buffer.from(s);
const head = (path: string, extra: Partial<TarHeader> = {}): TarHeader => ({ path: B(path), type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtimeNs: 1_700_000_000_000_000_000n, ...extra });

/** A tar of a few entries, bodies of several sizes: headers and bodies straddle the pieces it is cut into. */
function stream(): { bytes: Buffer; bodies: Map<string, Buffer> } {
  const parts: Buffer[] = [];
  const bodies = new Map<string, Buffer>();
  for (let i = 0; i < 40; i++) {
    const name = `dir/file-${i}-${'x'.repeat(i * 3)}`;
    const body = Buffer.alloc((i * 977) % 5000, i + 1);
    bodies.set(name, body);
    parts.push(encodeHeader(head(name, { size: body.length })), body, bodyPadding(body.length));
    if (i % 7 === 0) parts.push(encodeHeader(head(`link-${i}`, { type: 'symlink', linkpath: B(name) })));
  }
  parts.push(ZERO_BLOCKS);
  return { bytes: Buffer.concat(parts), bodies };
}

describe('byte queue with pooled buffers', () => {
  it('gives each buffer back once the parser has moved past it, and the parse is unaffected', async () => {
    const { bytes, bodies } = stream();
    const q = new ByteQueue(1 << 30, 0, () => {});
    let given = 0;
    const piece = 1000; // not a multiple of 512: every header and most bodies cross a piece
    for (let i = 0; i < bytes.length; i += piece) {
      const b = Buffer.from(bytes.subarray(i, i + piece));
      q.push(b, () => {
        given++;
        b.fill(0xee); // what the next frame decoded into it would do
      });
    }
    q.end();
    const pushed = Math.ceil(bytes.length / piece);
    const files = new Map<string, Buffer[]>();
    const links = new Map<string, string>();
    let cur = '';
    for await (const ev of parseTar(q)) {
      if (ev.kind === 'entry') {
        cur = ev.entry.header.path.toString();
        if (ev.entry.header.type === 'symlink') links.set(cur, ev.entry.header.linkpath!.toString());
        else files.set(cur, []);
      } else if (ev.kind === 'data') files.get(cur)!.push(Buffer.from(ev.chunk)); // a chunk is valid until the next event
    }
    // Paths and link targets were read after the buffers they came in were given back (and overwritten).
    expect([...files.keys()]).toEqual([...bodies.keys()]);
    for (const [name, body] of bodies) expect(Buffer.concat(files.get(name)!).equals(body)).toBe(true);
    expect(links.get('link-7')).toBe([...bodies.keys()][7]);
    expect(given).toBe(pushed);
  });

  it('parsed in batches, every chunk of a batch still holds the stream bytes when the batch is read whole', async () => {
    const { bytes, bodies } = stream();
    const q = new ByteQueue(1 << 30, 0, () => {});
    const piece = 1000;
    for (let i = 0; i < bytes.length; i += piece) {
      const b = Buffer.from(bytes.subarray(i, i + piece));
      q.push(b, () => b.fill(0xee));
    }
    q.end();
    const files = new Map<string, Buffer[]>();
    let cur = '';
    let batches = 0;
    for await (const batch of parseTarBatches(q)) {
      batches++;
      // Chunks are copied only once the whole batch is in hand: valid until the next batch is asked for.
      for (const ev of batch) {
        if (ev.kind === 'entry') {
          cur = ev.entry.header.path.toString();
          if (ev.entry.header.type === 'file') files.set(cur, []);
        } else if (ev.kind === 'data') files.get(cur)!.push(Buffer.from(ev.chunk));
      }
    }
    expect([...files.keys()]).toEqual([...bodies.keys()]);
    for (const [name, body] of bodies) expect(Buffer.concat(files.get(name)!).equals(body)).toBe(true);
    // At most one batch per buffer handed over (and one for the end).
    expect(batches).toBeLessThanOrEqual(Math.ceil(bytes.length / piece) + 1);
  });

  it('yields what it parsed before a malformed header, then the error', async () => {
    const good = Buffer.concat([encodeHeader(head('a', { size: 3 })), B('abc'), bodyPadding(3)]);
    const bad = encodeHeader(head('b'));
    bad[148] ^= 1; // checksum field
    const events: string[] = [];
    const run = async () => {
      for await (const batch of parseTarBatches((async function* () {
        yield Buffer.concat([good, bad]);
      })())) for (const ev of batch) events.push(ev.kind);
    };
    await expect(run()).rejects.toThrow('checksum');
    expect(events).toEqual(['entry', 'data', 'end-entry']);
  });

  it('gives back what was never handed over when it fails, and not the buffer the consumer holds', async () => {
    const q = new ByteQueue(1 << 30, 0, () => {});
    const given: number[] = [];
    for (let i = 0; i < 3; i++) q.push(Buffer.alloc(10, i), () => given.push(i));
    const it = q[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value![0]).toBe(0);
    q.fail(new Error('connection lost'));
    // The consumer may still be reading buffer 0; 1 and 2 were never handed over.
    expect(given).toEqual([1, 2]);
    await expect(it.next()).rejects.toThrow('connection lost');
    expect(given).toEqual([1, 2, 0]);
    q.push(Buffer.alloc(1), () => given.push(3));
    expect(given).toEqual([1, 2, 0, 3]);
  });

  it('a large pax header and the entries around it arrive whole from tiny pieces of one buffer the source overwrites', async () => {
    // The parser keeps its own copy of what spans pieces (appended to, not copied again per piece).
    const big = new Map([['user.big', Buffer.alloc(150_000, 7)], ['user.small', B('v')]]);
    const body = Buffer.alloc(3000, 9);
    const bytes = Buffer.concat([
      encodeHeader(head('a', { size: 5 })), B('hello'), bodyPadding(5),
      encodeHeader(head('big', { size: body.length, xattrs: big })), body, bodyPadding(body.length),
      encodeHeader(head('c', { type: 'symlink', linkpath: B('a') })),
      ZERO_BLOCKS,
    ]);
    for (const piece of [1, 7, 511, 513, 4096]) {
      const scratch = Buffer.alloc(piece);
      async function* source(): AsyncGenerator<Buffer> {
        for (let i = 0; i < bytes.length; i += piece) {
          const n = bytes.copy(scratch, 0, i, i + piece);
          yield scratch.subarray(0, n);
          scratch.fill(0xee); // reused for the next piece
        }
      }
      const seen: { path: string; xattrs?: Map<string, Buffer>; body: Buffer[] }[] = [];
      for await (const batch of parseTarBatches(source())) {
        for (const ev of batch) {
          if (ev.kind === 'entry') seen.push({ path: ev.entry.header.path.toString(), ...(ev.entry.header.xattrs ? { xattrs: ev.entry.header.xattrs } : {}), body: [] });
          else if (ev.kind === 'data') seen[seen.length - 1]!.body.push(Buffer.from(ev.chunk));
        }
      }
      expect(seen.map((e) => e.path)).toEqual(['a', 'big', 'c']);
      expect(Buffer.concat(seen[0]!.body).toString()).toBe('hello');
      expect(seen[1]!.xattrs!.get('user.big')!.equals(big.get('user.big')!)).toBe(true);
      expect(seen[1]!.xattrs!.get('user.small')!.toString()).toBe('v');
      expect(Buffer.concat(seen[1]!.body).equals(body)).toBe(true);
    }
  });
});
