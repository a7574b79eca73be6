// Block replication benchmark (issues 5 and 14). On a 1 GiB image (set
// FERRY_BENCH_IMAGE_MIB) — one third real files (a tar of /usr), one third
// zeros (written out, not holes, as on a disk), one third random, interleaved
// in 32 MiB stripes as on a used disk — it compares, in the same run:
//   full copy:   ferry migrate → ferry receive (TLS, xxh64 per chunk)
//                vs  lz4 -1 | socat  →  socat | lz4 -d > file (+ fsync)
//   delta:       after 500 scattered 16 KiB writes, ferry vs rsync -I
//                --inplace --no-whole-file through an rsync daemon on loopback
//   no change:   a ferry pass with nothing changed vs dd bs=4M of the source
//   20 GiB sparse image: peak agent and receiver RSS, and the wall time
//                (an image's holes are not read: SEEK_DATA/SEEK_HOLE).
// Delta and no-change passes are measured twice: one-shot (`ferry migrate`,
// a new process per pass) and resident (resident-agent.mjs: passes run in
// one long-lived process, as the agent daemon runs them for SYNC commands).
// Delta and no-change are measured with caches dropped before each run
// (cold, when root) and with warm caches, each FERRY_BENCH_RUNS (default 3)
// times alternating ferry and the baseline; the tables print every run, the
// medians and the ratio of the medians, with CPU seconds per GiB of each
// side next to the wall times (CPU moves far less than wall time on a
// shared, noisy VM).
// FERRY_BENCH_BLOCK_FULL_ONLY=1 stops after the full copy, and
// FERRY_BENCH_KEEP_IMAGE=1 keeps (and reuses) the source image: for
// iterating on the full-copy path. FERRY_BENCH_NODE_OPTIONS is passed to
// ferry's processes (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).

import { openSync, writeSync, closeSync, createReadStream, createWriteStream, rmSync, mkdirSync, readFileSync, statSync, existsSync, readdirSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { once } from 'node:events';
import {
  FERRY, NODE_FLAGS, WORK, MiB, GiB, sh, freePort, timed, startProcess, stop, peakRssMb, startRsyncDaemon, rsyncWireBytes,
  ensureWork, fmtBytes, table, ratio, dropCaches, cpuSeconds, median, cpuSecondsWithChildren, canDropCaches, childrenSettled, startResidentAgent,
} from './lib.mjs';

const IMAGE_BYTES = Number(process.env.FERRY_BENCH_IMAGE_MIB ?? 1024) * MiB;
const STRIPE = 32 * MiB;
const RUNS = Math.max(1, Number(process.env.FERRY_BENCH_RUNS ?? 3));
const WRITES = 500;
const WRITE_BYTES = 16 * 1024;
const FULL_ONLY = process.env.FERRY_BENCH_BLOCK_FULL_ONLY === '1';
const KEEP_IMAGE = process.env.FERRY_BENCH_KEEP_IMAGE === '1';
const NODE_OPTS = [...NODE_FLAGS, ...(process.env.FERRY_BENCH_NODE_OPTIONS ? process.env.FERRY_BENCH_NODE_OPTIONS.split(' ') : [])];

async function buildImage(path) {
  const third = Math.ceil(IMAGE_BYTES / 3 / MiB) * MiB;
  const usr = join(WORK, 'usr.part');
  sh(`tar cf - --ignore-failed-read /usr 2>/dev/null | head -c ${third} > ${usr} || true`);
  const have = statSync(usr).size;
  if (have < third) sh(`while [ $(stat -c %s ${usr}) -lt ${third} ]; do cat ${usr} ${usr} | head -c ${third} > ${usr}.2; mv ${usr}.2 ${usr}; done`);
  const fd = openSync(path, 'w');
  const usrFd = openSync(usr, 'r');
  const buf = Buffer.alloc(STRIPE);
  const zeros = Buffer.alloc(STRIPE);
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
    } else {
      // Zeros written, not a hole: a disk's free space is read like the rest (ferry skips an image's holes).
      writeSync(fd, zeros, 0, n, pos);
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

/** One ferry pass (caches dropped first when `cold`); also the receiver's CPU seconds during it. */
async function ferryPass(src, recv, cold = true) {
  if (cold) dropCaches();
  const cpu0 = cpuSeconds(recv.child.pid);
  const r = await timed(
    `node ${NODE_OPTS.join(' ')} ${FERRY} migrate --to 127.0.0.1:${recv.port} --token ${recv.info.token} --fingerprint ${recv.info.fingerprint} --block ${src}=disk0 --json`,
    { env: { FERRY_LOG_LEVEL: 'debug' } },
  );
  const summary = JSON.parse(r.stdout.trim().split('\n').pop())[0];
  return { ...r, summary, recvCpu: cpuSeconds(recv.child.pid) - cpu0, wire: summary.bytesOnWire, phases: phasesOf(r.stderr) };
}

/**
 * The resident agent (resident-agent.mjs) on the same build as FERRY; `pass(src, recv, cold)` runs one block
 * pass in it (caches dropped first when `cold`) and resolves like ferryPass, its wall time measured inside the
 * process (from the request to the pass's end).
 */
async function startResident() {
  const agent = await startResidentAgent(NODE_OPTS);
  const pass = async (src, recv, cold = true) => {
    if (cold) dropCaches();
    const cpu0 = cpuSeconds(recv.child.pid);
    const r = await agent.pass({ source: src, target: 'disk0', receiver: { host: '127.0.0.1', port: recv.port, token: recv.info.token, fingerprint: recv.info.fingerprint } });
    return { wall: r.wallMs / 1000, cpu: r.cpuS, recvCpu: cpuSeconds(recv.child.pid) - cpu0, summary: r.summary, wire: r.summary.bytesOnWire };
  };
  return { child: agent.child, pass };
}

/**
 * The pass's phases from its debug log (seconds since the process started):
 * session open (start-up, TLS, HELLO/WELCOME done), scan and send done,
 * digest agreed. The rest of the wall time is process exit.
 */
function phasesOf(stderr) {
  const at = {};
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line);
      if (typeof j.sinceProcessStartMs === 'number') at[j.msg] = j.sinceProcessStartMs / 1000;
    } catch {
      /* not a log line */
    }
  }
  return { open: at['block session open'] ?? NaN, scanned: at['block scan and send done'] ?? NaN, agreed: at['block pass agreed'] ?? NaN };
}

/**
 * Prints alternating pairs (ferry, baseline) run by run, then the medians and
 * the ratio of the medians against the goal.
 */
function printPairs(title, rows, { base, baseRow, goal, identical }) {
  const gib = IMAGE_BYTES / GiB;
  // in_pass: the pass's own duration (from connecting to the end), without process start and exit.
  const ferryRow = (f) => ({
    ferry_wall_s: f.wall,
    ferry_in_pass_s: f.summary.durationMs / 1000,
    to_open_s: f.phases.open,
    scan_s: f.phases.scanned - f.phases.open,
    end_s: f.phases.agreed - f.phases.scanned,
    agent_cpu_s_per_GiB: f.cpu / gib,
    receiver_cpu_s_per_GiB: f.recvCpu / gib,
    ferry_wire: f.wire,
  });
  // The resident agent's pass (x.a): its wall time inside the process, its CPU (every thread), the receiver's.
  const residentRow = (a) => ({ resident_wall_s: a.wall, resident_cpu_s_per_GiB: a.cpu / gib, resident_receiver_cpu_s_per_GiB: a.recvCpu / gib });
  const shown = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, k.endsWith('wire') ? fmtBytes(v) : v.toFixed(2)]));
  const lines = rows.map((x, i) => ({ run: String(i + 1), ...ferryRow(x.f), ...residentRow(x.a), ...baseRow(x), pair_ratio: x.f.wall / x.r.wall, resident_ratio: x.a.wall / x.r.wall }));
  const med = { run: 'median' };
  for (const k of Object.keys(lines[0])) if (k !== 'run') med[k] = median(lines.map((l) => l[k]));
  const fmt = (l) => ({ run: l.run, ...shown(Object.fromEntries(Object.entries(l).filter(([k]) => k !== 'run'))) });
  table(title, [...lines.map(fmt), fmt(med)]);
  const baseWall = Object.keys(baseRow(rows[0]))[0];
  console.log(
    `ferry migrate (one-shot) / ${base} wall time, ratio of the medians: ${ratio(med.ferry_wall_s, med[baseWall])}` +
      `  (goal ≤ ${goal.toFixed(2)}; ${rows.length} alternating runs of each)  identical afterwards: ${identical}`,
  );
  console.log(`resident agent / ${base} wall time, ratio of the medians: ${ratio(med.resident_wall_s, med[baseWall])}  (goal ≤ ${goal.toFixed(2)})`);
  console.log(`load: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
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

  // --- delta and no-change passes, cold and warm (issue 14): each figure is the
  // median of RUNS alternating runs (ferry, baseline, ferry, baseline, …).
  // ferry and rsync each get their own source, which their target already
  // matches, and a fresh set of scattered writes right before each run: both
  // always see the same kind of change (never the other's writes too).
  const rsyncSrc = join(dir, 'rsync-source.img');
  const rsyncDir = join(dir, 'rsync');
  mkdirSync(rsyncDir);
  sh(`cp --sparse=always ${src} ${rsyncSrc} && cp --sparse=always ${src} ${rsyncDir}/target.img && sync`);
  const daemon = await startRsyncDaemon(rsyncDir);
  // The resident agent has run a pass before any that is measured, as an installed agent has (the full copy).
  const resident = await startResident();
  await resident.pass(src, recv, false);
  const gib = IMAGE_BYTES / GiB;
  const states = canDropCaches() ? ['cold', 'warm'] : ['warm'];
  if (!canDropCaches()) console.log('(not root: page caches cannot be dropped, only warm-cache figures follow)');
  const ferryRuns = [full];
  for (const state of states) {
    const cold = state === 'cold';
    if (!cold) sh(`cat ${src} ${rsyncSrc} ${rsyncDir}/target.img > /dev/null`);
    const cacheNote = cold ? 'caches dropped (sync; drop_caches) before each run' : 'warm caches: source and targets in the page cache';

    const dRows = [];
    for (let i = 0; i < RUNS; i++) {
      scatterWrites(src, WRITES, WRITE_BYTES);
      sh('sync');
      const f = await ferryPass(src, recv, cold);
      ferryRuns.push(f);
      scatterWrites(src, WRITES, WRITE_BYTES);
      sh('sync');
      const a = await resident.pass(src, recv, cold);
      scatterWrites(rsyncSrc, WRITES, WRITE_BYTES);
      sh('sync');
      if (cold) dropCaches();
      const dcpu0 = cpuSecondsWithChildren(daemon.child.pid);
      const r = await timed(`rsync -I --inplace --no-whole-file --stats ${rsyncSrc} ${daemon.url}/target.img`);
      await childrenSettled(daemon.child.pid);
      const dcpu = cpuSecondsWithChildren(daemon.child.pid) - dcpu0;
      dRows.push({ f, a, r: { ...r, daemonCpu: dcpu, wire: rsyncWireBytes(r.stdout) } });
    }
    const dIdentical = sha(src) === sha(target) && sha(rsyncSrc) === sha(join(rsyncDir, 'target.img'));
    printPairs(`block delta after ${WRITES} scattered ${WRITE_BYTES / 1024} KiB writes, ${state} (${cacheNote})`, dRows, {
      base: 'rsync',
      baseRow: (x) => ({ rsync_wall_s: x.r.wall, rsync_client_cpu_s_per_GiB: x.r.cpu / gib, rsync_daemon_cpu_s_per_GiB: x.r.daemonCpu / gib, rsync_wire: x.r.wire }),
      goal: 0.5,
      identical: dIdentical,
    });

    const nRows = [];
    for (let i = 0; i < RUNS; i++) {
      const f = await ferryPass(src, recv, cold);
      ferryRuns.push(f);
      const a = await resident.pass(src, recv, cold);
      if (cold) dropCaches();
      const d = await timed(`dd if=${src} of=/dev/null bs=4M status=none`);
      nRows.push({ f, a, r: d });
    }
    printPairs(`no-change pass, ${state} (${cacheNote})`, nRows, {
      base: 'dd',
      baseRow: (x) => ({ dd_bs4M_wall_s: x.r.wall, dd_cpu_s_per_GiB: x.r.cpu / gib }),
      goal: 1.2,
      identical: sha(src) === sha(target),
    });
  }
  await stop(daemon.child);
  const residentRss = peakRssMb(resident.child.pid);
  resident.child.stdin.end();
  await stop(resident.child);
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
    { run: `${fmtBytes(IMAGE_BYTES)} image: full, delta and no-change passes`, agent_peak_rss_MB: Math.max(...ferryRuns.map((f) => f.rssMb)).toFixed(0), receiver_peak_rss_MB: recvRss.toFixed(0), wall_s: '' },
    { run: `${fmtBytes(IMAGE_BYTES)} image: the resident agent's passes`, agent_peak_rss_MB: residentRss.toFixed(0), receiver_peak_rss_MB: recvRss.toFixed(0), wall_s: '' },
    { run: '20 GiB sparse image, full pass', agent_peak_rss_MB: sparse.rssMb.toFixed(0), receiver_peak_rss_MB: recv2Rss.toFixed(0), wall_s: sparse.wall.toFixed(2) },
  ]);
  console.log('(goal: peak RSS < 200 MB, agent and receiver)');
  rmSync(dir, { recursive: true, force: true });
}
