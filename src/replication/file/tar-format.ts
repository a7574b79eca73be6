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

function record(key: string, value: Buffer): Buffer {
  // "<len> <key>=<value>\n" where len counts itself.
  const body = 3 + Buffer.byteLength(key) + value.length; // ' ' + '=' + '\n'
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

function octal(buf: Buffer, off: number, width: number, value: number): void {
  const max = 8 ** (width - 1) - 1;
  const s = (value >= 0 && value <= max ? value : 0).toString(8).padStart(width - 1, '0');
  buf.write(s, off, 'latin1');
  buf[off + width - 1] = 0;
}

function ustar(name: string, type: number, size: number, h: Pick<TarHeader, 'mode' | 'uid' | 'gid' | 'mtimeNs' | 'devmajor' | 'devminor'>, linkname = ''): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name.slice(0, 99), 0, 'latin1');
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  octal(b, 124, 12, size);
  octal(b, 136, 12, Number(h.mtimeNs / 1_000_000_000n));
  b.fill(0x20, 148, 156);
  b[156] = type;
  b.write(linkname.slice(0, 99), 157, 'latin1');
  b.write('ustar\u000000', 257, 'latin1');
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 'latin1');
  return b;
}

function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

export const ZERO_BLOCKS = Buffer.alloc(BLOCK * 2);

/** Encodes the pax extended header and the ustar header for one entry (body and padding follow separately). */
export function encodeHeader(h: TarHeader): Buffer {
  const recs: Buffer[] = [];
  recs.push(record('path', h.path.length === 0 ? Buffer.from('.') : h.path));
  if (h.linkpath) recs.push(record('linkpath', h.linkpath));
  const sec = h.mtimeNs / 1_000_000_000n;
  const ns = h.mtimeNs % 1_000_000_000n;
  recs.push(record('mtime', Buffer.from(`${sec}.${ns.toString().padStart(9, '0')}`)));
  if (h.uid > 0o7777777) recs.push(record('uid', Buffer.from(String(h.uid))));
  if (h.gid > 0o7777777) recs.push(record('gid', Buffer.from(String(h.gid))));
  if (h.size > 0o77777777777) recs.push(record('size', Buffer.from(String(h.size))));
  if (h.xattrs) for (const [k, v] of h.xattrs) recs.push(record(`SCHILY.xattr.${k}`, v));
  if (h.ferry) for (const [k, v] of Object.entries(h.ferry)) recs.push(record(`FERRY.${k}`, Buffer.from(v)));
  const pax = Buffer.concat(recs);
  const ascii = h.path.toString('latin1').replace(/[^\x20-\x7e]/g, '_');
  const xh = ustar(`PaxHeaders/${ascii}`.slice(0, 99), 0x78, pax.length, h);
  const main = ustar(ascii || '.', TYPEFLAG[h.type], h.size, h, h.linkpath ? h.linkpath.toString('latin1').replace(/[^\x20-\x7e]/g, '_') : '');
  return Buffer.concat([xh, pax, Buffer.alloc(padding(pax.length)), main]);
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
  /** Largest pax extended header accepted (default 1 MiB). */
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
  const s = b.toString('latin1', off, off + width).replace(/[\0 ]+$/g, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad octal field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function cstr(b: Buffer, off: number, width: number): Buffer {
  const end = b.indexOf(0, off);
  return b.subarray(off, end < 0 || end > off + width ? off + width : end);
}

function parsePax(buf: Buffer, where: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) throw new TarFormatError(`${where}: malformed pax record`);
    const len = Number(buf.toString('latin1', i, sp));
    if (!Number.isInteger(len) || len <= sp - i || i + len > buf.length || buf[i + len - 1] !== 0x0a) {
      throw new TarFormatError(`${where}: malformed pax record length`);
    }
    const eq = buf.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= i + len) throw new TarFormatError(`${where}: pax record without '='`);
    out.set(buf.toString('utf8', sp + 1, eq), buf.subarray(eq + 1, i + len - 1));
    i += len;
  }
  return out;
}

const TYPES_BY_FLAG = new Map<number, TarType>(Object.entries(TYPEFLAG).map(([k, v]) => [v, k as TarType]));

export type TarEvent = { kind: 'entry'; entry: ParsedEntry } | { kind: 'data'; chunk: Buffer } | { kind: 'end-entry' };

/**
 * Parses a tar byte stream incrementally. Yields an 'entry' event per entry,
 * then its body as 'data' events (slices of the input, no copies when
 * possible), then 'end-entry'. Throws TarFormatError naming the entry on
 * malformed or oversized headers.
 */
export async function* parseTar(source: AsyncIterable<Buffer>, limits: ParseLimits = {}): AsyncGenerator<TarEvent> {
  const maxPax = limits.maxPaxBytes ?? 1 << 20;
  const maxPath = limits.maxPathBytes ?? 4096;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const it = source[Symbol.asyncIterator]();
  let eof = false;
  let index = 0;

  const fill = async (n: number): Promise<boolean> => {
    while (pendingLen < n && !eof) {
      const r = await it.next();
      if (r.done) eof = true;
      else if (r.value.length > 0) {
        pending.push(r.value);
        pendingLen += r.value.length;
      }
    }
    return pendingLen >= n;
  };
  const take = (n: number): Buffer => {
    if (pending[0]!.length < n) pending = [Buffer.concat(pending)];
    const first = pending[0]!;
    const out = first.subarray(0, n);
    if (first.length === n) pending.shift();
    else pending[0] = first.subarray(n);
    pendingLen -= n;
    return out;
  };
  /** Yields up to n body bytes as they arrive. */
  async function* body(n: number, where: string): AsyncGenerator<TarEvent> {
    let left = n;
    while (left > 0) {
      if (pendingLen === 0 && !(await fill(1))) throw new TarFormatError(`${where}: stream ends inside its body`);
      const first = pending[0]!;
      const k = Math.min(left, first.length);
      const chunk = take(k);
      left -= k;
      yield { kind: 'data', chunk };
    }
  }
  const skip = async (n: number): Promise<void> => {
    if (n === 0) return;
    if (!(await fill(n))) throw new TarFormatError(`entry #${index}: stream ends inside padding`);
    take(n);
  };

  let pax: Map<string, Buffer> | null = null;
  for (;;) {
    if (!(await fill(BLOCK))) {
      if (pendingLen === 0) return; // clean end without trailer blocks
      throw new TarFormatError(`entry #${index}: stream ends inside a header`);
    }
    const h = take(BLOCK);
    if (h.every((b) => b === 0)) {
      if (pax) throw new TarFormatError(`entry #${index}: pax header not followed by an entry`);
      continue; // end-of-archive blocks; a stream may carry several archives
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    const ustarName = cstr(h, 0, 100);
    const shown = JSON.stringify(ustarName.toString('utf8'));
    if (sum !== readOctal(h, 148, 8)) throw new TarFormatError(`entry #${index} (${shown}): header checksum mismatch`);
    const flag = h[156]!;
    const size = readOctal(h, 124, 12);
    if (flag === 0x78 || flag === 0x67) {
      if (size > maxPax) throw new TarFormatError(`entry #${index} (${shown}): pax header of ${size} bytes exceeds the ${maxPax}-byte limit`);
      if (!(await fill(size))) throw new TarFormatError(`entry #${index} (${shown}): stream ends inside its pax header`);
      const recs = parsePax(Buffer.from(take(size)), `entry #${index} (${shown})`);
      await skip(padding(size));
      if (flag === 0x78) pax = pax ? new Map([...pax, ...recs]) : recs;
      continue; // global headers are parsed for validity and otherwise ignored
    }
    if (flag === 0x4c || flag === 0x4b) {
      throw new TarFormatError(`entry #${index} (${shown}): GNU long-name headers are not accepted; use pax`);
    }
    let path = ustarName;
    if (h.toString('latin1', 257, 262) === 'ustar' && h[345] !== 0) path = Buffer.concat([cstr(h, 345, 155), Buffer.from('/'), ustarName]);
    let linkpath: Buffer | undefined = h[157] !== 0 ? cstr(h, 157, 100) : undefined;
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
    if (pax) {
      const xattrs = new Map<string, Buffer>();
      const ferry: Record<string, string> = {};
      for (const [k, v] of pax) {
        if (k === 'path') path = Buffer.from(v);
        else if (k === 'linkpath') linkpath = Buffer.from(v);
        else if (k === 'size') header.size = Number(v.toString('latin1'));
        else if (k === 'uid') header.uid = Number(v.toString('latin1'));
        else if (k === 'gid') header.gid = Number(v.toString('latin1'));
        else if (k === 'mtime') {
          const m = /^(-?\d+)(?:\.(\d{1,9}))?/.exec(v.toString('latin1'));
          if (m) header.mtimeNs = BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
        } else if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), Buffer.from(v));
        else if (k.startsWith('FERRY.')) ferry[k.slice(6)] = v.toString('latin1');
      }
      if (xattrs.size > 0) header.xattrs = xattrs;
      if (Object.keys(ferry).length > 0) header.ferry = ferry;
      pax = null;
    }
    header.path = path;
    if (linkpath) header.linkpath = linkpath;
    const where = `entry #${index} (${JSON.stringify(path.toString('utf8'))})`;
    if (!Number.isSafeInteger(header.size) || header.size < 0) throw new TarFormatError(`${where}: bad size`);
    if (path.length > maxPath) throw new TarFormatError(`${where}: path of ${path.length} bytes exceeds the ${maxPath}-byte limit`);
    if (linkpath && linkpath.length > maxPath) throw new TarFormatError(`${where}: link target exceeds the ${maxPath}-byte limit`);
    const type = flag === 0 ? 'file' : TYPES_BY_FLAG.get(flag);
    if (!type) throw new TarFormatError(`${where}: unsupported entry type '${String.fromCharCode(flag)}'`);
    header.type = type;
    const hasBody = type === 'file';
    if (!hasBody && header.size !== 0) {
      throw new TarFormatError(`${where}: a ${type} entry cannot carry ${header.size} bytes of data`);
    }
    yield { kind: 'entry', entry: { header, typeflag: String.fromCharCode(flag) } };
    const n = hasBody ? header.size : 0;
    yield* body(n, where);
    await skip(padding(n));
    yield { kind: 'end-entry' };
    index++;
  }
}
