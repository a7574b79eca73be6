// Block replication benchmark (issue 5). On a 2 GiB image — one third real
// files (a tar of /usr), one third zeros, one third random, interleaved in
// 32 MiB stripes as on a used disk — it compares, in the same run:
//   full copy:   ferry migrate → ferry receive (TLS, xxh64 per chunk)
//                vs  lz4 -1 | socat  →  socat | lz4 -d > file (+ fsync)
//   delta:       after 320 random 64 KiB writes,
//                ferry vs rsync -I --inplace --no-whole-file via rsync daemon
//   no change:   ferry pass with nothing changed (wire bytes vs image size)
//   20 GiB sparse image: peak agent RSS.
// Page caches are dropped before each contender (when root).
// FERRY_BENCH_BLOCK_FULL_ONLY=1 stops after the full copy, and
// FERRY_BENCH_KEEP_IMAGE=1 keeps (and reuses) the source image: for
// iterating on the full-copy path. FERRY_BENCH_NODE_OPTIONS is passed to
// ferry's processes (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).

import { openSync, writeSync, closeSync, createReadStream, createWriteStream, rmSync, mkdirSync, readFileSync, statSync, existsSync, readdirSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { once } from 'node:events';
import {
  FERRY, WORK, MiB, GiB, sh, freePort, timed, startProcess, stop, peakRssMb, startRsyncDaemon, rsyncWireBytes,
  ensureWork, fmtBytes, table, ratio, dropCaches, cpuSeconds,
} from './lib.mjs';

const IMAGE_BYTES = Number(process.env.FERRY_BENCH_IMAGE_MIB ?? 2048) * MiB;
const STRIPE = 32 * MiB;
const FULL_ONLY = process.env.FERRY_BENCH_BLOCK_FULL_ONLY === '1';
const KEEP_IMAGE = process.env.FERRY_BENCH_KEEP_IMAGE === '1';
const NODE_OPTS = process.env.FERRY_BENCH_NODE_OPTIONS ? process.env.FERRY_BENCH_NODE_OPTIONS.split(' ') : [];

async function buildImage(path) {
  const third = Math.ceil(IMAGE_BYTES / 3 / MiB) * MiB;
  const usr = join(WORK, 'usr.part');
  sh(`tar cf - --ignore-failed-read /usr 2>/dev/null | head -c ${third} > ${usr} || true`);
  const have = statSync(usr).size;
  if (have < third) sh(`while [ $(stat -c %s ${usr}) -lt ${third} ]; do cat ${usr} ${usr} | head -c ${third} > ${usr}.2; mv ${usr}.2 ${usr}; done`);
  const fd = openSync(path, 'w');
  const usrFd = openSync(usr, 'r');
  const buf = Buffer.alloc(STRIPE);
  let pos = 0;
  let usrPos = 0;
  for (let stripe = 0; pos < IMAGE_BYTES; stripe++) {
    const n = Math.min(STRIPE, IMAGE_BYTES - pos);
    const kind = stripe % 3;
    if (kind === 0) {
      const { readSync } = await import('node:fs');
      readSync(usrFd, buf, 0, n, usrPos);
      usrPos += n;
      writeSync(fd, buf, 0, n, pos);
    } else if (kind === 2) {
      writeSync(fd, randomBytes(n), 0, n, pos);
    }
    pos += n;
  }
  const { ftruncateSync } = await import('node:fs');
  ftruncateSync(fd, IMAGE_BYTES);
  closeSync(usrFd);
  closeSync(fd);
  rmSync(usr);
}

function scatterWrites(path, count, size) {
  const fd = openSync(path, 'r+');
  for (let i = 0; i < count; i++) {
    const off = randomInt(0, Math.floor((IMAGE_BYTES - size) / 4096)) * 4096;
    writeSync(fd, randomBytes(size), 0, size, off);
  }
  closeSync(fd);
}

async function startReceiver(dataDir, target) {
  const port = await freePort();
  const child = await startProcess(
    process.execPath,
    [...NODE_OPTS, FERRY, 'receive', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--target', `disk0=${target}`],
    /fingerprint/i,
  );
  const info = JSON.parse(readFileSync(join(dataDir, 'receiver.json'), 'utf8'));
  return { child, port, info };
}

async function ferryPass(src, recv) {
  dropCaches();
  const r = await timed(
    `node ${NODE_OPTS.join(' ')} ${FERRY} migrate --to 127.0.0.1:${recv.port} --token ${recv.info.token} --fingerprint ${recv.info.fingerprint} --block ${src}=disk0 --json`,
  );
  const summary = JSON.parse(r.stdout.trim().split('\n').pop())[0];
  return { ...r, summary };
}

function sha(path) {
  return sh(`sha256sum ${path}`).split(' ')[0];
}

export async function run() {
  ensureWork();
  const dir = join(WORK, 'block');
  const src = join(dir, 'source.img');
  const reuse = KEEP_IMAGE && existsSync(src) && statSync(src).size === IMAGE_BYTES;
  if (reuse) {
    for (const f of readdirSync(dir)) if (f !== 'source.img') rmSync(join(dir, f), { recursive: true, force: true });
    console.log(`# block benchmark: reusing the ${fmtBytes(IMAGE_BYTES)} image ${src}`);
  } else {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    console.log(`# block benchmark: building a ${fmtBytes(IMAGE_BYTES)} image (usr tar / zeros / random stripes) …`);
    await buildImage(src);
  }
  console.log(`load: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);

  // --- full copy: baseline pipeline
  const out = join(dir, 'pipeline-out.img');
  const port = await freePort();
  dropCaches();
  const recvCmd = `socat -u TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr - | tee >(wc -c > ${dir}/pipe-bytes) | lz4 -d -c > ${out} && sync ${out}`;
  const pipeRecv = timed(recvCmd);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = process.hrtime.bigint();
  const pipeSend = await timed(`lz4 -1 -c ${src} | socat -u - TCP:127.0.0.1:${port}`);
  const pr = await pipeRecv;
  const pipeWall = Number(process.hrtime.bigint() - t0) / 1e9;
  const pipeBytes = Number(readFileSync(`${dir}/pipe-bytes`, 'utf8').trim());
  const srcSha = sha(src);
  if (sha(out) !== srcSha) throw new Error('pipeline output differs from source');
  rmSync(out);

  // --- full copy: ferry
  const target = join(dir, 'ferry-target.img');
  sh(`truncate -s ${IMAGE_BYTES} ${target}`);
  const recvDir = join(dir, 'receiver');
  const recv = await startReceiver(recvDir, target);
  const recvCpu0 = cpuSeconds(recv.child.pid);
  const full = await ferryPass(src, recv);
  const recvCpu = cpuSeconds(recv.child.pid) - recvCpu0;
  const fullOk = sha(target) === srcSha;

  table('full copy of the image (wall time includes fsync on the receiving side)', [
    { contender: 'lz4 -1 | socat → socat | lz4 -d', wall_s: pipeWall.toFixed(2), sender_cpu_s_per_GiB: (pipeSend.cpu / (IMAGE_BYTES / GiB)).toFixed(2), wire: fmtBytes(pipeBytes), sender_peak_rss_MB: pipeSend.rssMb.toFixed(0), receiver_cpu_s_per_GiB: (pr.cpu / (IMAGE_BYTES / GiB)).toFixed(2), identical: true },
    { contender: 'ferry migrate → ferry receive (TLS)', wall_s: full.wall.toFixed(2), sender_cpu_s_per_GiB: (full.cpu / (IMAGE_BYTES / GiB)).toFixed(2), wire: fmtBytes(full.summary.bytesOnWire ?? full.summary.wireBytes ?? full.summary.bytes_sent), sender_peak_rss_MB: full.rssMb.toFixed(0), receiver_cpu_s_per_GiB: (recvCpu / (IMAGE_BYTES / GiB)).toFixed(2), identical: fullOk },
  ]);
  console.log(`ferry / pipeline wall-time ratio: ${ratio(full.wall, pipeWall)}  (target ≤ 0.80)`);
  console.log(`load: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  if (FULL_ONLY) {
    await stop(recv.child);
    rmSync(target, { force: true });
    if (!KEEP_IMAGE) rmSync(dir, { recursive: true, force: true });
    return;
  }

  // --- delta: rsync baseline target is a copy of the pre-change image
  const rsyncDir = join(dir, 'rsync');
  mkdirSync(rsyncDir);
  sh(`cp --sparse=always ${src} ${rsyncDir}/target.img`);
  scatterWrites(src, 320, 64 * 1024);
  const newSha = sha(src);
  const daemon = await startRsyncDaemon(rsyncDir);
  dropCaches();
  const rs = await timed(`rsync -I --inplace --no-whole-file --stats ${src} ${daemon.url}/target.img`);
  const rsBytes = rsyncWireBytes(rs.stdout);
  const rsOk = sha(join(rsyncDir, 'target.img')) === newSha;
  await stop(daemon.child);
  const delta = await ferryPass(src, recv);
  const deltaOk = sha(target) === newSha;
  const wire = (s) => s.bytesOnWire ?? s.wireBytes ?? s.bytes_sent;
  table('delta after 320 random 64 KiB writes', [
    { contender: 'rsync -I --inplace --no-whole-file (daemon)', wall_s: rs.wall.toFixed(2), sender_cpu_s: rs.cpu.toFixed(2), wire: fmtBytes(rsBytes), identical: rsOk },
    { contender: 'ferry migrate (delta pass)', wall_s: delta.wall.toFixed(2), sender_cpu_s: delta.cpu.toFixed(2), wire: fmtBytes(wire(delta.summary)), identical: deltaOk },
  ]);
  console.log(`ferry / rsync wall-time ratio: ${ratio(delta.wall, rs.wall)}  (target ≤ 0.50); wire-bytes ratio: ${ratio(wire(delta.summary), rsBytes)}  (target ≤ 1.00)`);

  // --- nothing changed
  const idle = await ferryPass(src, recv);
  console.log(`\n## pass with nothing changed\nwall ${idle.wall.toFixed(2)} s, wire ${fmtBytes(wire(idle.summary))} = ${((100 * wire(idle.summary)) / IMAGE_BYTES).toFixed(4)}% of the image (target < 0.1%)`);
  const recvRss = peakRssMb(recv.child.pid);
  await stop(recv.child);

  // --- 20 GiB sparse image: bounded memory
  const big = join(dir, 'sparse20g.img');
  sh(`truncate -s 20G ${big}`);
  const fd = openSync(big, 'r+');
  for (let i = 0; i < 40; i++) writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, randomInt(0, 20 * 1024 - 4) * MiB);
  closeSync(fd);
  const bigTarget = join(dir, 'sparse20g-target.img');
  sh(`truncate -s 20G ${bigTarget}`);
  const recv2 = await startReceiver(join(dir, 'receiver2'), bigTarget);
  const sparse = await ferryPass(big, recv2);
  const recv2Rss = peakRssMb(recv2.child.pid);
  await stop(recv2.child);
  table('memory', [
    { run: '2 GiB image, full + delta + idle passes', agent_peak_rss_MB: Math.max(full.rssMb, delta.rssMb, idle.rssMb).toFixed(0), receiver_peak_rss_MB: recvRss.toFixed(0) },
    { run: '20 GiB sparse image, full pass', agent_peak_rss_MB: sparse.rssMb.toFixed(0), receiver_peak_rss_MB: recv2Rss.toFixed(0), wall_s: sparse.wall.toFixed(2) },
  ]);
  console.log('(target: peak agent RSS < 200 MB)');
  rmSync(dir, { recursive: true, force: true });
}
