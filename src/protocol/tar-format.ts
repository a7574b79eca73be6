// The tar dialect on the wire: POSIX pax (ustar headers preceded by an 'x'
// extended header). Paths, link targets and xattr values are raw bytes (pax
// records are length-prefixed, so no text decoding ever happens), mtimes
// carry nanoseconds, ids and sizes have no ustar limits, xattrs and POSIX
// ACLs travel as SCHILY.xattr.* (as GNU tar writes them). ferry's own
// extensions use the FERRY. prefix:
//   FERRY.op=delete            remove the path (recursively) on the receiver
//   FERRY.op=patch             rewrite only the listed ranges of an existing file
//   FERRY.map=off+len,…        data ranges carried by the entry body, in order
//                              (sparse files: everything else is a hole;
//                              patches: everything else is kept)
//   FERRY.size=N               the file's real size when FERRY.map is present
// The encoder is ours rather than tar-stream's because tar-stream decodes pax
// values as UTF-8 text (breaking binary xattrs and non-UTF-8 names) and caps
// ustar ids at 6 octal digits; the output is still plain pax that GNU tar reads.

export const BLOCK = 512;

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

const TYPEFLAG: Record<TarType, number> = {
  file: 0x30,
  link: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  dir: 0x35,
  fifo: 0x36,
};

export interface TarHeader {
  path: Buffer;
  type: TarType;
  /** Bytes of body that follow the header (for mapped files: the sum of the map's lengths). */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  linkpath?: Buffer;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, names without the SCHILY.xattr. prefix. */
  xattrs?: Map<string, Buffer>;
  /** FERRY.* records, names without the prefix. */
  ferry?: Record<string, string>;
}

/** Decimal digits of a non-negative integer (no string made). */
function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** Bytes of the pax record "<len> <key>=<value>\n", where len counts itself. */
function recordLength(keyBytes: number, valueBytes: number): number {
  const body = 3 + keyBytes + valueBytes; // ' ' + '=' + '\n'
  const d = digits(body);
  const len = body + d;
  return digits(len) === d ? len : body + digits(len);
}

/** Writes a non-negative integer in decimal at `off`; returns the offset after it. */
function decimal(out: Buffer, off: number, n: number): number {
  const end = off + digits(n);
  for (let i = end - 1; i >= off; i--) {
    out[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}

/** The keys every entry may carry, as bytes with their '=' (copied, not encoded, per entry). */
const KEY_PATH = Buffer.from('path=');
const KEY_LINKPATH = Buffer.from('linkpath=');
const KEY_MTIME = Buffer.from('mtime=');

/** Writes one pax record at `off` (its length from recordLength); returns the offset after it. */
function writeRecord(out: Buffer, off: number, len: number, key: string | Buffer, value: Buffer | string): number {
  off = decimal(out, off, len);
  out[off++] = 0x20;
  if (typeof key === 'string') {
    off += out.write(key, off, 'utf8');
    out[off++] = 0x3d;
  } else {
    out.set(key, off);
    off += key.length;
  }
  if (typeof value === 'string') off += out.write(value, off, 'latin1');
  else {
    out.set(value, off);
    off += value.length;
  }
  out[off] = 0x0a;
  return off + 1;
}

/** Largest value of an octal field of each width (width - 1 digits and a NUL): a table, not `8 ** n` per field. */
const OCTAL_MAX: number[] = Array.from({ length: 13 }, (_, w) => (w === 0 ? 0 : 8 ** (w - 1) - 1));

/** Writes `value` as a NUL-terminated octal field (0 when it does not fit). */
function octal(buf: Buffer, off: number, width: number, value: number): void {
  let v = value >= 0 && value <= OCTAL_MAX[width]! ? value : 0;
  let i = off + width - 2;
  // Below 2^31 with shifts (ids, modes, most sizes and times), above with division.
  for (; i >= off && v > 0x7fffffff; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  for (; i >= off; i--) {
    buf[i] = 0x30 + (v & 7);
    v >>>= 3;
  }
  buf[off + width - 1] = 0;
}

const USTAR_MAGIC = Buffer.from('ustar\u000000', 'latin1');
const PAX_PREFIX = Buffer.from('PaxHeaders/');

/**
 * Writes up to `max` bytes of `src` at `off` as a printable ASCII stand-in for a raw path in the ustar name
 * fields: bytes outside 0x20–0x7e become '_' (what tar readers show for a pax entry's ustar name).
 */
function asciiName(out: Buffer, off: number, src: Buffer, max: number): void {
  const n = Math.min(src.length, max);
  for (let i = 0; i < n; i++) {
    const c = src[i]!;
    out[off + i] = c < 0x20 || c > 0x7e ? 0x5f : c;
  }
}

/** Writes a ustar header block at `off` of `b`, which must hold zeros there; the name (and link name) fields are the caller's. */
function ustar(b: Buffer, off: number, type: number, size: number, mtimeSec: number, h: Pick<TarHeader, 'mode' | 'uid' | 'gid' | 'devmajor' | 'devminor'>): void {
  octal(b, off + 100, 8, h.mode & 0o7777);
  octal(b, off + 108, 8, h.uid);
  octal(b, off + 116, 8, h.gid);
  octal(b, off + 124, 12, size);
  octal(b, off + 136, 12, mtimeSec);
  b.fill(0x20, off + 148, off + 156);
  b[off + 156] = type;
  b.set(USTAR_MAGIC, off + 257);
  octal(b, off + 329, 8, h.devmajor ?? 0);
  octal(b, off + 337, 8, h.devminor ?? 0);
  // The checksum: the sum of the header's bytes. Only these ranges can be non-zero.
  let sum = 0;
  for (let i = off, e = off + 265; i < e; i++) sum += b[i]!;
  for (let i = off + 329, e = off + 345; i < e; i++) sum += b[i]!;
  // Six octal digits, NUL, space (the sum of 512 bytes is below 8^6).
  octal(b, off + 148, 7, sum);
  b[off + 155] = 0x20;
}

function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

export const ZERO_BLOCKS = Buffer.alloc(BLOCK * 2);

const DOT = Buffer.from('.');

/**
 * Encodes the pax extended header and the ustar header for one entry (body
 * and padding follow separately), into one buffer: this runs once per entry
 * of the tree, so it allocates once and writes in place. With `scratch` (large
 * enough) nothing is allocated: the result is a view of it, valid until the
 * next use of that scratch (the tar producer hands the free end of its stream
 * slice, so a header is written where it travels; a fresh zero-filled buffer
 * per entry was an ArrayBuffer per entry for the collector, see
 * docs/file-replication.md "Less CPU per entry on both ends"). Numbers and
 * names are written as bytes, not formatted as strings first ("The agent's
 * CPU per entry").
 */
export function encodeHeader(h: TarHeader, scratch?: Buffer): Buffer {
  const path = h.path.length === 0 ? DOT : h.path;
  // seconds.nanoseconds, cut out of the time's decimal text (no bigint division per entry).
  let t: string;
  let mtimeSec: number;
  if (h.mtimeNs >= 0n) {
    t = h.mtimeNs.toString();
    if (t.length < 10) t = t.padStart(10, '0');
    mtimeSec = 0;
    for (let i = 0, e = t.length - 9; i < e; i++) mtimeSec = mtimeSec * 10 + (t.charCodeAt(i) - 0x30);
    t = `${t.slice(0, -9)}.${t.slice(-9)}`;
  } else {
    // Before 1970: the exact decimal value, as GNU tar writes it ("-12.750000000" is 12.75 s before 1970); the
    // ustar field, which cannot hold it in octal, says 0 (octal() writes 0 for a negative number).
    const before = -h.mtimeNs;
    mtimeSec = -1;
    t = `-${before / 1_000_000_000n}.${(before % 1_000_000_000n).toString().padStart(9, '0')}`;
  }
  const bigUid = h.uid > 0o7777777;
  const bigGid = h.gid > 0o7777777;
  const bigSize = h.size > 0o77777777777;
  // Record lengths first (same order as written below), then one allocation.
  const pathLen = recordLength(4, path.length);
  const linkLen = h.linkpath ? recordLength(8, h.linkpath.length) : 0;
  const mtimeLen = recordLength(5, t.length);
  let paxLen = pathLen + linkLen + mtimeLen;
  if (bigUid) paxLen += recordLength(3, digits(h.uid));
  if (bigGid) paxLen += recordLength(3, digits(h.gid));
  if (bigSize) paxLen += recordLength(4, digits(h.size));
  let extra: { key: string; value: Buffer; len: number }[] | null = null;
  if (h.xattrs || h.ferry) {
    extra = [];
    if (h.xattrs) for (const [k, v] of h.xattrs) extra.push({ key: `SCHILY.xattr.${k}`, value: v, len: 0 });
    if (h.ferry) for (const [k, v] of Object.entries(h.ferry)) extra.push({ key: `FERRY.${k}`, value: Buffer.from(v), len: 0 });
    for (const x of extra) {
      x.len = recordLength(Buffer.byteLength(x.key), x.value.length);
      paxLen += x.len;
    }
  }
  const mainAt = BLOCK + paxLen + padding(paxLen);
  const len = mainAt + BLOCK;
  const out = scratch && scratch.length >= len ? scratch.fill(0, 0, len).subarray(0, len) : Buffer.alloc(len);
  let off = BLOCK;
  off = writeRecord(out, off, pathLen, KEY_PATH, path);
  if (h.linkpath) off = writeRecord(out, off, linkLen, KEY_LINKPATH, h.linkpath);
  off = writeRecord(out, off, mtimeLen, KEY_MTIME, t);
  if (bigUid) off = writeRecord(out, off, recordLength(3, digits(h.uid)), 'uid', String(h.uid));
  if (bigGid) off = writeRecord(out, off, recordLength(3, digits(h.gid)), 'gid', String(h.gid));
  if (bigSize) off = writeRecord(out, off, recordLength(4, digits(h.size)), 'size', String(h.size));
  if (extra) for (const x of extra) off = writeRecord(out, off, x.len, x.key, x.value);
  // The ustar names: "PaxHeaders/<name>" and the name, at most 99 bytes each (the root's own name is '.').
  out.set(PAX_PREFIX, 0);
  asciiName(out, PAX_PREFIX.length, h.path, 99 - PAX_PREFIX.length);
  ustar(out, 0, 0x78, paxLen, mtimeSec, h);
  asciiName(out, mainAt, path, 99);
  if (h.linkpath) asciiName(out, mainAt + 157, h.linkpath, 99);
  ustar(out, mainAt, TYPEFLAG[h.type], h.size, mtimeSec, h);
  return out;
}

export function bodyPadding(size: number): Buffer {
  return ZERO_BLOCKS.subarray(0, padding(size));
}

// ---------------------------------------------------------------- decoding

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

export interface ParsedEntry {
  header: TarHeader;
  /** The raw ustar typeflag, for errors about unsupported types. */
  typeflag: string;
}

export interface ParseLimits {
  /**
   * Largest pax extended header accepted (default 1 MiB); also the most pax
   * bytes (extended and global headers together) that may precede one entry,
   * so a run of headers cannot grow one record map without bound.
   */
  maxPaxBytes?: number;
  /** Longest path accepted (default 4096 bytes). */
  maxPathBytes?: number;
}

function readOctal(b: Buffer, off: number, width: number): number {
  // GNU base-256 for big numbers.
  if (b[off]! & 0x80) {
    let v = 0;
    for (let i = off + 1; i < off + width; i++) v = v * 256 + b[i]!;
    return v;
  }
  // Octal digits, optionally surrounded by spaces, ended by NUL or space (or the field's end).
  const end = off + width;
  let i = off;
  while (i < end && b[i] === 0x20) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++, digits++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  for (; i < end; i++) {
    const c = b[i]!;
    if (c !== 0 && c !== 0x20) {
      const s = b.toString('latin1', off, end).replace(/[\0 ]+$/g, '').trim();
      throw new TarFormatError(`bad octal field ${JSON.stringify(s)}`);
    }
  }
  return digits === 0 ? 0 : v;
}

function cstr(b: Buffer, off: number, width: number): Buffer {
  const end = b.indexOf(0, off);
  return b.subarray(off, end < 0 || end > off + width ? off + width : end);
}

function parsePax(buf: Buffer, whereOf: () => string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) throw new TarFormatError(`${whereOf()}: malformed pax record`);
    const len = Number(buf.toString('latin1', i, sp));
    if (!Number.isInteger(len) || len <= sp - i || i + len > buf.length || buf[i + len - 1] !== 0x0a) {
      throw new TarFormatError(`${whereOf()}: malformed pax record length`);
    }
    const eq = buf.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= i + len) throw new TarFormatError(`${whereOf()}: pax record without '='`);
    out.set(buf.toString('utf8', sp + 1, eq), buf.subarray(eq + 1, i + len - 1));
    i += len;
  }
  return out;
}

/** Largest uid/gid: (uid_t)-1 means "unchanged" to chown and is no owner. */
const MAX_ID = 0xffff_fffe;
/** mtime seconds: 12 digits reach year 33658, far past any file system's range. */
const MTIME = /^-?(\d{1,12})(?:\.(\d{1,18}))?$/;

/** A pax id (uid, gid): decimal digits within uid_t, or an error naming the entry and the field. */
function paxId(v: Buffer, field: string, whereOf: () => string): number {
  const s = v.toString('latin1');
  const n = /^\d{1,10}$/.test(s) ? Number(s) : NaN;
  if (!(n <= MAX_ID)) throw new TarFormatError(`${whereOf()}: pax ${field} ${JSON.stringify(s.slice(0, 40))} is not a number from 0 to ${MAX_ID}`);
  return n;
}

const TYPES_BY_FLAG = new Map<number, TarType>(Object.entries(TYPEFLAG).map(([k, v]) => [v, k as TarType]));

export type TarEvent = { kind: 'entry'; entry: ParsedEntry } | { kind: 'data'; chunk: Buffer } | { kind: 'end-entry' };

/**
 * Parses a tar byte stream incrementally. Yields an 'entry' event per entry,
 * then its body as 'data' events (slices of the input, no copies when
 * possible), then 'end-entry'. Throws TarFormatError naming the entry on
 * malformed or oversized headers.
 *
 * The source may reuse a buffer once it is asked for the next one (the
 * receiver decodes frames into pooled buffers, receiver/byte-queue.ts): by
 * then nothing parseTar keeps refers to it (what is left of it is copied
 * first, at most a header's bytes; a header's fields are copies). A 'data'
 * chunk is a view of the source's buffer, valid until the consumer asks for
 * the next event.
 */
export async function* parseTar(source: AsyncIterable<Buffer>, limits: ParseLimits = {}): AsyncGenerator<TarEvent> {
  for await (const batch of parseTarBatches(source, limits)) for (const ev of batch) yield ev;
}

/**
 * parseTar's events in batches: everything that the buffers in hand hold is
 * parsed synchronously, and the batch goes out before the next buffer is
 * asked for. A 'data' chunk is valid until the consumer asks for the next
 * batch. Events parsed before a malformed header are yielded before the
 * error is thrown, as parseTar would have.
 *
 * Why batches (measured, docs/file-replication.md, "Less CPU per entry on
 * both ends"): an async generator costs promise round trips per event, and a
 * nested one (the body) more per step; three or more events per file made
 * parseTar and the extractor's loop about 0.4 s of the receiver's main
 * thread on the 43,000-entry /usr tree.
 */
export async function* parseTarBatches(source: AsyncIterable<Buffer>, limits: ParseLimits = {}): AsyncGenerator<TarEvent[]> {
  const p = new TarParser(limits);
  const it = source[Symbol.asyncIterator]();
  let eof = false;
  try {
    for (;;) {
      const need = p.parse();
      if (p.out.length > 0) yield p.takeEvents();
      // Asks for more only once the events in hand are out (their chunks are views of the buffers it may reuse).
      while (p.pendingLen < need && !eof) {
        // The source may reuse the buffers it handed out so far once asked for more: keep a copy of their rest.
        if (p.pendingLen > 0) p.joinPending();
        const r = await it.next();
        if (r.done) eof = true;
        else if (r.value.length > 0) p.push(r.value);
      }
      if (p.pendingLen < need && p.atEnd()) return;
    }
  } catch (e) {
    // What was parsed before the error is the consumer's, as with one event at a time.
    if (p.out.length > 0) yield p.takeEvents();
    throw e;
  }
}

/**
 * The pax records of one entry applied to its header; returns its pax linkpath, if any. Every value is checked here,
 * so a bad one is refused naming the entry and the field rather than failing later in a system call with a message
 * about something else. Its own function (not inlined into TarParser.header): V8 compiles each separately and the
 * header's own compilation stays smaller.
 */
function applyPax(header: TarHeader, pax: Map<string, Buffer>, where: () => string): Buffer | undefined {
  let linkpath: Buffer | undefined;
  let xattrs: Map<string, Buffer> | undefined;
  let ferry: Record<string, string> | undefined;
  for (const [k, v] of pax) {
    if (k === 'path') continue;
    else if (k === 'linkpath') linkpath = Buffer.from(v);
    else if (k === 'size') {
      const s = v.toString('latin1');
      header.size = /^\d{1,16}$/.test(s) ? Number(s) : NaN;
      if (!Number.isSafeInteger(header.size)) throw new TarFormatError(`${where()}: pax size ${JSON.stringify(s.slice(0, 40))} is not a byte count`);
    } else if (k === 'uid') header.uid = paxId(v, 'uid', where);
    else if (k === 'gid') header.gid = paxId(v, 'gid', where);
    else if (k === 'mtime') {
      const text = v.toString('latin1');
      const m = MTIME.exec(text);
      if (!m) throw new TarFormatError(`${where()}: pax mtime ${JSON.stringify(v.toString('latin1', 0, 40))} is not seconds[.fraction] of at most 12 digits`);
      // The text's value, its fraction included, signed as a whole ("-12.75" is 12.75 s before 1970, "-0.5" half a
      // second), to the nanosecond rounded down, as GNU tar reads it (a negative one with more digits: 1 ns earlier).
      const frac = m[2] ?? '';
      const ns = BigInt(m[1]!) * 1_000_000_000n + BigInt(frac.slice(0, 9).padEnd(9, '0'));
      header.mtimeNs = !text.startsWith('-') ? ns : /[1-9]/.test(frac.slice(9)) ? -ns - 1n : -ns;
    } else if (k.startsWith('SCHILY.xattr.')) (xattrs ??= new Map()).set(k.slice('SCHILY.xattr.'.length), Buffer.from(v));
    else if (k.startsWith('FERRY.')) (ferry ??= {})[k.slice(6)] = v.toString('latin1');
  }
  if (xattrs) header.xattrs = xattrs;
  if (ferry) header.ferry = ferry;
  return linkpath;
}

/** Where the parser stands between calls of parse(). */
const AT_HEADER = 0;
const IN_PAX = 1;
const IN_BODY = 2;
const IN_PADDING = 3;

/**
 * The parsing itself, synchronous: parse() turns what the buffers in hand hold into events and says how many bytes it
 * needs in hand to go on; parseTarBatches feeds it. A plain class rather than the body of the async generator (until
 * 2026-12-06, docs/file-replication.md "The receiver's CPU per entry"): V8 compiled that generator, with everything
 * inlined into its suspend points, in 100–550 ms (its own timing) per job, one to four jobs a run.
 */
class TarParser {
  private readonly maxPax: number;
  private readonly maxPath: number;
  private pending: Buffer[] = [];
  /** Bytes of pending[0] already taken (an offset, not a new view of its rest per take). */
  private pendingOff = 0;
  /** Bytes not yet taken, in all of pending. */
  pendingLen = 0;
  private index = 0;
  /**
   * Our own copy of what must outlive a request for more (its own ArrayBuffer, so that a view of it is
   * told from a source's buffer by `.buffer`). Appended to, and doubled when full: a pax header or a
   * header block that arrives in many small frames costs linear copying, not a copy of everything held
   * per frame (1 MiB of pax in 64-byte frames was about 8 GB of memcpy).
   */
  private carry = Buffer.allocUnsafeSlow(0);
  /** Events parsed from the buffers in hand; handed out (and a new array begun) before the next buffer is asked for. */
  out: TarEvent[] = [];
  private pax: Map<string, Buffer> | null = null;
  /** Pax bytes (x and g headers) read since the last entry: bounded by maxPax in total. */
  private paxBytes = 0;
  /** The current header block, copied out of the source's buffer (which may be reused, see above); one for the whole stream. */
  private readonly h = Buffer.allocUnsafeSlow(BLOCK);
  private readonly hWords = new Uint32Array(this.h.buffer, this.h.byteOffset, BLOCK / 4);
  private state = AT_HEADER;
  /** IN_PAX: the pax header's size, with its padding, and its typeflag. */
  private paxSize = 0;
  private paxPadded = 0;
  private paxFlag = 0;
  /** IN_BODY: body bytes still to come; IN_PADDING: padding bytes after the body. */
  private left = 0;
  private pad = 0;
  /** The current entry's path, for errors. */
  private path: Buffer = this.h;

  constructor(limits: ParseLimits) {
    this.maxPax = limits.maxPaxBytes ?? 1 << 20;
    this.maxPath = limits.maxPathBytes ?? 4096;
  }

  push(b: Buffer): void {
    this.pending.push(b);
    this.pendingLen += b.length;
  }

  takeEvents(): TarEvent[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  /** The stream ended with fewer bytes in hand than parse() asked for: true at a clean end, else throws. */
  atEnd(): boolean {
    const i = this.index;
    switch (this.state) {
      case AT_HEADER:
        if (this.pendingLen === 0) return true; // clean end without trailer blocks
        throw new TarFormatError(`entry #${i}: stream ends inside a header`);
      case IN_PAX:
        if (this.pendingLen < this.paxSize) throw new TarFormatError(`entry #${i} (${this.shown()}): stream ends inside its pax header`);
        throw new TarFormatError(`entry #${i}: stream ends inside padding`);
      case IN_BODY:
        throw new TarFormatError(`${this.where()}: stream ends inside its body`);
      default:
        throw new TarFormatError(`entry #${i}: stream ends inside padding`);
    }
  }

  /** The ustar name of the header in hand, for errors. */
  private shown(): string {
    return JSON.stringify(cstr(this.h, 0, 100).toString('utf8'));
  }

  private where(): string {
    return `entry #${this.index} (${JSON.stringify(this.path.toString('utf8'))})`;
  }

  /** pending as one buffer holding only what is not yet taken (a view of `carry`). */
  joinPending(): void {
    const head = this.pending[0]!;
    const headRest = head.length - this.pendingOff;
    let start: number;
    let end: number;
    if (head.buffer === this.carry.buffer && this.carry.length > 0) {
      start = head.byteOffset - this.carry.byteOffset + this.pendingOff;
      end = start + headRest;
      if (end + (this.pendingLen - headRest) > this.carry.length) {
        const next = Buffer.allocUnsafeSlow(Math.max(2 * this.carry.length, 2 * this.pendingLen));
        this.carry.copy(next, 0, start, end);
        this.carry = next;
        end -= start;
        start = 0;
      }
    } else {
      this.carry = Buffer.allocUnsafeSlow(Math.max(2 * this.pendingLen, 4096));
      start = 0;
      end = head.copy(this.carry, 0, this.pendingOff);
    }
    for (let i = 1; i < this.pending.length; i++) end += this.pending[i]!.copy(this.carry, end);
    this.pending = [this.carry.subarray(start, end)];
    this.pendingOff = 0;
  }

  /** Moves past n bytes (at most pendingLen). */
  private advance(n: number): void {
    this.pendingLen -= n;
    this.pendingOff += n;
    while (this.pending.length > 0 && this.pendingOff >= this.pending[0]!.length) {
      this.pendingOff -= this.pending[0]!.length;
      this.pending.shift();
    }
  }

  /** The next n bytes (at most pendingLen), a view when they lie in one buffer. */
  private take(n: number): Buffer {
    if (this.pending[0]!.length - this.pendingOff < n) this.joinPending();
    const out = this.pending[0]!.subarray(this.pendingOff, this.pendingOff + n);
    this.advance(n);
    return out;
  }

  /** Copies the next n bytes (at most pendingLen) into dst. */
  private takeInto(dst: Buffer, n: number): void {
    const first = this.pending[0]!;
    if (first.length - this.pendingOff >= n) {
      first.copy(dst, 0, this.pendingOff, this.pendingOff + n);
      this.advance(n);
    } else this.take(n).copy(dst);
  }

  /** Parses what is in hand into `out`; returns how many bytes it needs in hand to go on (more than it has). */
  parse(): number {
    for (;;) {
      switch (this.state) {
        case AT_HEADER:
          if (this.pendingLen < BLOCK) return BLOCK;
          this.header();
          break;
        case IN_PAX: {
          if (this.pendingLen < this.paxPadded) return this.paxPadded;
          const i = this.index;
          const recs = parsePax(Buffer.from(this.take(this.paxSize)), () => `entry #${i} (${this.shown()})`);
          this.advance(this.paxPadded - this.paxSize);
          // Merged in place: later records win, and the work stays linear in the bytes read.
          if (this.paxFlag === 0x78) {
            if (!this.pax) this.pax = recs;
            else for (const [k, v] of recs) this.pax.set(k, v);
          }
          // global headers are parsed for validity and otherwise ignored
          this.state = AT_HEADER;
          break;
        }
        case IN_BODY:
          while (this.left > 0) {
            if (this.pendingLen === 0) return 1;
            const k = Math.min(this.left, this.pending[0]!.length - this.pendingOff);
            this.out.push({ kind: 'data', chunk: this.take(k) });
            this.left -= k;
          }
          this.state = IN_PADDING;
          break;
        default:
          if (this.pad > 0) {
            if (this.pendingLen < this.pad) return this.pad;
            this.advance(this.pad);
          }
          this.out.push({ kind: 'end-entry' });
          this.index++;
          this.state = AT_HEADER;
      }
    }
  }

  /** One header block (pendingLen >= BLOCK): a pax header to read next, an entry, or the end-of-archive blocks. */
  private header(): void {
    const h = this.h;
    const hWords = this.hWords;
    const index = this.index;
    this.takeInto(h, BLOCK);
    // The header checksum counts its own field as spaces; the plain byte sum tells an all-zero block.
    // Summed four bytes at a time: two bytes in each 16-bit lane of s (128 words * 2 * 255 < 65536).
    let s = 0;
    for (let i = 0; i < BLOCK / 4; i++) {
      const w = hWords[i]!;
      s += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
    }
    const raw = (s & 0xffff) + (s >>> 16);
    if (raw === 0) {
      if (this.pax) throw new TarFormatError(`entry #${index}: pax header not followed by an entry`);
      return; // end-of-archive blocks; a stream may carry several archives
    }
    let sum = raw + 8 * 0x20;
    for (let i = 148; i < 156; i++) sum -= h[i]!;
    const ustarName = cstr(h, 0, 100);
    if (sum !== readOctal(h, 148, 8)) throw new TarFormatError(`entry #${index} (${this.shown()}): header checksum mismatch`);
    const flag = h[156]!;
    const size = readOctal(h, 124, 12);
    if (flag === 0x78 || flag === 0x67) {
      const maxPax = this.maxPax;
      if (size > maxPax) throw new TarFormatError(`entry #${index} (${this.shown()}): pax header of ${size} bytes exceeds the ${maxPax}-byte limit`);
      this.paxBytes += size;
      if (this.paxBytes > maxPax) {
        throw new TarFormatError(`entry #${index} (${this.shown()}): pax headers before one entry add up to ${this.paxBytes} bytes, past the ${maxPax}-byte limit`);
      }
      this.paxSize = size;
      this.paxPadded = size + padding(size);
      this.paxFlag = flag;
      this.state = IN_PAX;
      return;
    }
    if (flag === 0x4c || flag === 0x4b) {
      throw new TarFormatError(`entry #${index} (${this.shown()}): GNU long-name headers are not accepted; use pax`);
    }
    // Copies: `h` is reused for the next header. (A ferry stream's path comes from the pax header instead.)
    let path = ustarName;
    const pax = this.pax;
    const paxPath = pax?.get('path');
    if (paxPath) path = paxPath; // a view of the pax header's own copy (parsePax above)
    else if (h.toString('latin1', 257, 262) === 'ustar' && h[345] !== 0) path = Buffer.concat([cstr(h, 345, 155), Buffer.from('/'), ustarName]);
    else path = Buffer.from(ustarName);
    this.path = path;
    let linkpath: Buffer | undefined = h[157] !== 0 ? Buffer.from(cstr(h, 157, 100)) : undefined;
    const header: TarHeader = {
      path,
      type: 'file',
      size,
      mode: readOctal(h, 100, 8),
      uid: readOctal(h, 108, 8),
      gid: readOctal(h, 116, 8),
      mtimeNs: BigInt(readOctal(h, 136, 12)) * 1_000_000_000n,
      devmajor: readOctal(h, 329, 8),
      devminor: readOctal(h, 337, 8),
    };
    this.paxBytes = 0;
    const where = (): string => this.where();
    if (pax) {
      linkpath = applyPax(header, pax, where) ?? linkpath;
      this.pax = null;
    }
    header.path = path;
    if (linkpath) header.linkpath = linkpath;
    const maxPath = this.maxPath;
    if (!Number.isSafeInteger(header.size) || header.size < 0) throw new TarFormatError(`${where()}: bad size`);
    if (path.length > maxPath) throw new TarFormatError(`${where()}: path of ${path.length} bytes exceeds the ${maxPath}-byte limit`);
    if (linkpath && linkpath.length > maxPath) throw new TarFormatError(`${where()}: link target exceeds the ${maxPath}-byte limit`);
    const type = flag === 0 ? 'file' : TYPES_BY_FLAG.get(flag);
    if (!type) throw new TarFormatError(`${where()}: unsupported entry type '${String.fromCharCode(flag)}'`);
    header.type = type;
    const hasBody = type === 'file';
    if (!hasBody && header.size !== 0) {
      throw new TarFormatError(`${where()}: a ${type} entry cannot carry ${header.size} bytes of data`);
    }
    this.out.push({ kind: 'entry', entry: { header, typeflag: String.fromCharCode(flag) } });
    const n = hasBody ? header.size : 0;
    this.left = n;
    this.pad = padding(n);
    this.state = IN_BODY;
  }
}
