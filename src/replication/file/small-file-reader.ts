// Reads small files whole on worker threads, in batches, with plain
// synchronous calls (open, read, fstat, close). A tree of many small files
// costs per-file overhead: one worker message per batch of files is far
// cheaper for the main thread than four thread-pool operations per file,
// and several workers keep several cold reads in flight. The fstat after
// the read lets the caller see whether the file changed since the walk.
// If workers cannot start, the same reads run on the thread pool.

import { Worker } from 'node:worker_threads';
import { close as fsClose, constants, fstat as fsFstat, open as fsOpen, read as fsRead } from 'node:fs';

export interface SmallFileStat {
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  size: bigint;
  isFile: boolean;
}

export type SmallRead = 'vanished' | { after: SmallFileStat; data: Buffer; grew: boolean };

interface Request {
  path: Buffer;
  size: number;
  resolve: (r: SmallRead) => void;
  reject: (e: Error) => void;
}

const BATCH = 32;
const O_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
parentPort.on('message', (m) => {
  const out = [];
  const transfer = [];
  for (let i = 0; i < m.paths.length; i++) {
    const p = Buffer.from(m.paths[i], 'latin1');
    let fd;
    try {
      fd = fs.openSync(p, ${O_FLAGS});
    } catch (e) {
      out.push(e.code === 'ENOENT' || e.code === 'ELOOP' ? { status: 'vanished' } : { status: 'error', message: e.message, code: e.code });
      continue;
    }
    try {
      const data = new Uint8Array(m.sizes[i] + 1);
      const buf = Buffer.from(data.buffer);
      let got = 0;
      for (;;) {
        const n = fs.readSync(fd, buf, got, buf.length - got, got);
        got += n;
        if (n === 0 || got === buf.length) break;
      }
      const st = fs.fstatSync(fd, { bigint: true });
      out.push({ status: 'ok', data: data.buffer, got, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, size: st.size, isFile: st.isFile() });
      transfer.push(data.buffer);
    } catch (e) {
      out.push({ status: 'error', message: e.message, code: e.code });
    } finally {
      fs.closeSync(fd);
    }
  }
  parentPort.postMessage({ id: m.id, out }, transfer);
});
`;

interface WorkerResult {
  status: 'ok' | 'vanished' | 'error';
  data?: ArrayBuffer;
  got?: number;
  ino?: bigint;
  mtimeNs?: bigint;
  ctimeNs?: bigint;
  size?: bigint;
  isFile?: boolean;
  message?: string;
  code?: string;
}

export class SmallFileReader {
  private readonly workers: { w: Worker; inFlight: number }[] = [];
  private readonly batches = new Map<number, Request[]>();
  private pending: Request[] = [];
  private scheduled = false;
  private nextId = 1;
  /** Bytes read so far. */
  bytesRead = 0;

  private broken = false;

  /**
   * Workers start on demand, one more each time every running one already has
   * a batch in flight, up to `threads`: a delta pass that reads a few files
   * does not pay for four thread start-ups, a full pass gets them all.
   */
  constructor(private readonly threads = 4) {}

  private spawn(): boolean {
    try {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      const slot = { w, inFlight: 0 };
      w.on('message', (m: { id: number; out: WorkerResult[] }) => {
        if (--slot.inFlight === 0) w.unref(); // idle workers never keep the process alive
        const reqs = this.batches.get(m.id) ?? [];
        this.batches.delete(m.id);
        m.out.forEach((r, j) => this.settle(reqs[j]!, r));
      });
      w.on('error', (e) => this.failAll(e));
      w.unref();
      this.workers.push(slot);
      return true;
    } catch {
      return false;
    }
  }

  /** Reads up to size+1 bytes of the file at path (one more than expected, to notice growth). */
  read(path: Buffer, size: number): Promise<SmallRead> {
    return new Promise((resolve, reject) => {
      const req = { path, size, resolve, reject };
      if (this.workers.length === 0 && (this.broken || this.threads === 0 || !this.spawn())) {
        this.broken = true;
        return this.readOnPool(req);
      }
      this.pending.push(req);
      if (this.pending.length >= BATCH) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const reqs = this.pending;
    this.pending = [];
    let slot = this.workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    if (slot.inFlight > 0 && this.workers.length < this.threads && this.spawn()) slot = this.workers[this.workers.length - 1]!;
    const id = this.nextId++;
    this.batches.set(id, reqs);
    if (slot.inFlight++ === 0) slot.w.ref(); // a pending batch keeps the process alive
    // Paths travel as latin1 text: byte-exact, and cheaper to clone than Buffer views of shared slabs.
    slot.w.postMessage({ id, paths: reqs.map((r) => r.path.toString('latin1')), sizes: reqs.map((r) => r.size) });
  }

  private settle(req: Request, r: WorkerResult): void {
    if (r.status === 'vanished') return req.resolve('vanished');
    if (r.status === 'error') {
      const e = new Error(r.message) as NodeJS.ErrnoException;
      if (r.code) e.code = r.code;
      return req.reject(e);
    }
    const after: SmallFileStat = { ino: r.ino!, mtimeNs: r.mtimeNs!, ctimeNs: r.ctimeNs!, size: r.size!, isFile: r.isFile! };
    this.bytesRead += r.got!;
    const data = Buffer.from(r.data!, 0, Math.min(r.got!, req.size));
    req.resolve({ after, data, grew: r.got! > req.size });
  }

  private failAll(e: Error): void {
    for (const reqs of this.batches.values()) for (const r of reqs) r.reject(e);
    this.batches.clear();
  }

  /** The same read with thread-pool callbacks (when workers are unavailable). */
  private readOnPool(req: Request): void {
    fsOpen(req.path, O_FLAGS, (err, fd) => {
      if (err) return err.code === 'ENOENT' || err.code === 'ELOOP' ? req.resolve('vanished') : req.reject(err);
      const data = Buffer.allocUnsafe(req.size + 1);
      const finish = (error: Error | null, r?: SmallRead) => fsClose(fd, () => (error ? req.reject(error) : req.resolve(r!)));
      const more = (got: number) =>
        fsRead(fd, data, got, data.length - got, got, (rerr, n) => {
          if (rerr) return finish(rerr);
          if (n > 0 && got + n < data.length) return more(got + n);
          const total = got + n;
          fsFstat(fd, { bigint: true }, (serr, st) => {
            if (serr) return finish(serr);
            this.bytesRead += total;
            const after: SmallFileStat = { ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, size: st.size, isFile: st.isFile() };
            finish(null, { after, data: data.subarray(0, Math.min(total, req.size)), grew: total > req.size });
          });
        });
      more(0);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((s) => s.w.terminate()));
    this.workers.length = 0;
  }
}
