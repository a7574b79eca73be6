// The agent's side of a full file pass without the socket: the walk, the small-file reads, the tar
// headers, xattrs and the manifest, on the pass's shared worker threads (pass-workers.ts), slices handed
// back at once (with `lz4`: compressed on the pool first). Prints wall and CPU seconds of the process (all
// threads); THREADS=1 adds each thread's CPU (main first, the pool's thread last; V8's helpers between);
// HASH=1 the stream's sha1 (the same tree must give the same stream from any build).
// Measures one build at a time; run builds alternately, always under the shared lock:
//   flock /tmp/ferry-heavy.lock node test/bench/file-producer.mjs DIST ROOT [lz4]
// (docs/file-replication.md, "The agent's CPU per entry").
import { performance } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const [distArg, root, mode] = process.argv.slice(2);
if (!distArg || !root) throw new Error('usage: file-producer.mjs DIST ROOT [lz4]');
const dist = resolve(distArg);
const { TarProducer } = await import(`${dist}/replication/file/tar-producer.js`);
const { Walker } = await import(`${dist}/replication/file/walker.js`);
const { PassWorkers } = await import(`${dist}/replication/file/pass-workers.js`);
const { encodePayload } = await import(`${dist}/protocol/compress.js`);

/** CPU seconds of each thread of this process with more than 20 ms. */
function threadTimes() {
  const out = [];
  for (const t of readdirSync('/proc/self/task')) {
    const st = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(f[11]) + Number(f[12])) / 100;
    if (cpu > 0.02) out.push(cpu.toFixed(2));
  }
  return out.join(' ');
}

const dir = mkdtempSync(join(tmpdir(), 'ferry-producer-'));
const hash = process.env.HASH ? createHash('sha1') : null;
const c0 = process.cpuUsage();
const t0 = performance.now();
const workers = new PassWorkers();
const walker = new Walker(root, { lister: workers.lister, patterns: [], paths: [] });
walker.prefetch();
const lz4 = mode === 'lz4' ? workers.lz4() : null;
const producer = new TarProducer({ root, manifest: join(dir, 'm'), basis: [][Symbol.iterator](), full: false, walker, smallFileThreads: workers.read });
let bytes = 0;
const pending = [];
for await (const slice of producer.stream()) {
  bytes += slice.length;
  hash?.update(slice);
  if (!lz4) {
    producer.recycle(slice);
    continue;
  }
  pending.push(encodePayload(slice, lz4).then((enc) => {
    producer.recycle(slice);
    if (enc.payload !== slice) lz4.recycle(enc.payload);
  }));
  if (pending.length >= 2) await pending.shift();
}
await Promise.all(pending);
const threads = process.env.THREADS ? threadTimes() : '';
await workers.close();
const c = process.cpuUsage(c0);
console.log(`wall=${((performance.now() - t0) / 1000).toFixed(2)} cpu=${((c.user + c.system) / 1e6).toFixed(2)} entries=${producer.stats.entries} stream=${(bytes / 1e6).toFixed(1)}MB`);
if (threads) console.log(`  threads ${threads}`);
if (hash) console.log(`  sha1 ${hash.digest('hex')}`);
rmSync(dir, { recursive: true });
