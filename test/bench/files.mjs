// File-level replication benchmark (issue 6). On a generated tree of
// 100,000 files (mostly small text, some large binaries) it compares, in the
// same run:
//   full copy:  ferry migrate --files → ferry receive
//               vs  tar | lz4 | socat → socat | lz4 -d | tar x
//               vs  rsync -a through an rsync daemon
//   delta:      after changing 1% of the files, ferry vs rsync -a
//   memory:     peak agent RSS on a 1,000,000-file tree (FERRY_BENCH_MILLION=0 skips it)

import { mkdirSync, writeFileSync, rmSync, readFileSync, appendFileSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import {
  FERRY, WORK, MiB, sh, freePort, timed, startProcess, stop, peakRssMb, startRsyncDaemon, rsyncWireBytes,
  ensureWork, fmtBytes, table, ratio, dropCaches,
} from './lib.mjs';

const FILES = Number(process.env.FERRY_BENCH_FILES ?? 100_000);
const WORDS = 'alpha beta gamma delta server disk volume block chunk replica ferry migrate cloud target source kernel'.split(' ');

function text(bytes) {
  let s = '';
  while (s.length < bytes) s += `${WORDS[randomInt(WORDS.length)]} ${randomInt(1e6)}${randomInt(8) === 0 ? '\n' : ' '}`;
  return s.slice(0, bytes);
}

/** `count` files in directories of 1,000; one in 5,000 is a 4–32 MiB binary. */
function buildTree(root, count) {
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const dir = join(root, `d${Math.floor(i / 1000)}`, `s${Math.floor((i % 1000) / 100)}`);
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    let data;
    if (i % 5000 === 4999) {
      const n = (4 + randomInt(29)) * MiB;
      data = Buffer.concat([randomBytes(n / 2), Buffer.from(text(n / 2))]);
    } else {
      data = text(200 + randomInt(8000));
    }
    writeFileSync(join(dir, `f${i}.txt`), data);
    bytes += data.length;
  }
  return bytes;
}

function changeOnePercent(root, count) {
  for (let i = 0; i < count; i += 100) {
    const path = join(root, `d${Math.floor(i / 1000)}`, `s${Math.floor((i % 1000) / 100)}`, `f${i}.txt`);
    appendFileSync(path, text(300));
  }
}

async function startReceiver(dataDir, target) {
  const port = await freePort();
  const child = await startProcess(
    process.execPath,
    [FERRY, 'receive', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--target', `tree=${target}`],
    /fingerprint/i,
  );
  const info = JSON.parse(readFileSync(join(dataDir, 'receiver.json'), 'utf8'));
  // The agent's manifests (what `ferry migrate --state` keeps between passes).
  return { child, port, info, stateDir: `${dataDir}-agent-state` };
}

async function ferryPass(src, recv, { cold = true } = {}) {
  if (cold) dropCaches();
  const r = await timed(
    `node ${FERRY} migrate --to 127.0.0.1:${recv.port} --token ${recv.info.token} --fingerprint ${recv.info.fingerprint} --files ${src}=tree --state ${recv.stateDir} --json`,
  );
  return { ...r, summary: JSON.parse(r.stdout.trim().split("\n").pop())[0] };
}

const wire = (s) => s.bytesOnWire ?? s.wireBytes ?? s.bytes_sent;

function differs(a, b) {
  return sh(`rsync -aHAX --numeric-ids --dry-run --itemize-changes --delete ${a}/ ${b}/ | wc -l`).trim() !== '0';
}

export async function run() {
  ensureWork();
  const dir = join(WORK, 'files');
  rmSync(dir, { recursive: true, force: true });
  const src = join(dir, 'src');
  mkdirSync(src, { recursive: true });
  console.log(`# file benchmark: generating ${FILES} files …`);
  const total = buildTree(src, FILES);
  console.log(`tree: ${FILES} files, ${fmtBytes(total)}`);

  // tar | lz4 | socat
  const pipeDst = join(dir, 'pipe-dst');
  mkdirSync(pipeDst);
  const port = await freePort();
  dropCaches();
  const pr = timed(`socat -u TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr - | tee >(wc -c > ${dir}/pipe-bytes) | lz4 -d -c | tar -x -C ${pipeDst} && sync -f ${pipeDst}`);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = process.hrtime.bigint();
  const ps = await timed(`tar -C ${src} -cf - . | lz4 -1 -c | socat -u - TCP:127.0.0.1:${port}`);
  await pr;
  const pipeWall = Number(process.hrtime.bigint() - t0) / 1e9;
  const pipeBytes = Number(readFileSync(`${dir}/pipe-bytes`, 'utf8').trim());
  rmSync(pipeDst, { recursive: true, force: true });

  // rsync -a via daemon
  const rsDst = join(dir, 'rsync-dst');
  mkdirSync(rsDst);
  const daemon = await startRsyncDaemon(rsDst);
  dropCaches();
  const rsFull = await timed(`rsync -a --stats ${src}/ ${daemon.url}/`);

  // ferry
  const fDst = join(dir, 'ferry-dst');
  mkdirSync(fDst);
  const recv = await startReceiver(join(dir, 'receiver'), fDst);
  const full = await ferryPass(src, recv);
  const fullOk = !differs(src, fDst);

  table(`full copy of ${FILES} files (${fmtBytes(total)})`, [
    { contender: 'tar | lz4 | socat → socat | lz4 -d | tar x', wall_s: pipeWall.toFixed(2), sender_cpu_s: ps.cpu.toFixed(2), wire: fmtBytes(pipeBytes), sender_rss_MB: ps.rssMb.toFixed(0), identical: 'n/a' },
    { contender: 'rsync -a (daemon)', wall_s: rsFull.wall.toFixed(2), sender_cpu_s: rsFull.cpu.toFixed(2), wire: fmtBytes(rsyncWireBytes(rsFull.stdout)), sender_rss_MB: rsFull.rssMb.toFixed(0), identical: !differs(src, rsDst) },
    { contender: 'ferry migrate --files', wall_s: full.wall.toFixed(2), sender_cpu_s: full.cpu.toFixed(2), wire: fmtBytes(wire(full.summary)), sender_rss_MB: full.rssMb.toFixed(0), identical: fullOk },
  ]);
  console.log(`ferry / tar-pipeline wall-time ratio: ${ratio(full.wall, pipeWall)}  (target ≤ 1.00)`);

  changeOnePercent(src, FILES);
  dropCaches();
  const rsDelta = await timed(`rsync -a --stats ${src}/ ${daemon.url}/`);
  const delta = await ferryPass(src, recv);
  // The same again with the page cache as a running server keeps it (metadata cached): the delta's CPU, not the disk, decides.
  changeOnePercent(src, FILES);
  const rsWarm = await timed(`rsync -a --stats ${src}/ ${daemon.url}/`);
  const warm = await ferryPass(src, recv, { cold: false });
  await stop(daemon.child);
  table('delta after changing 1% of the files', [
    { contender: 'rsync -a (daemon), cold cache', wall_s: rsDelta.wall.toFixed(2), sender_cpu_s: rsDelta.cpu.toFixed(2), wire: fmtBytes(rsyncWireBytes(rsDelta.stdout)), identical: 'below' },
    { contender: 'ferry migrate --files, cold cache', wall_s: delta.wall.toFixed(2), sender_cpu_s: delta.cpu.toFixed(2), wire: fmtBytes(wire(delta.summary)), identical: 'below' },
    { contender: 'rsync -a (daemon), warm cache', wall_s: rsWarm.wall.toFixed(2), sender_cpu_s: rsWarm.cpu.toFixed(2), wire: fmtBytes(rsyncWireBytes(rsWarm.stdout)), identical: !differs(src, rsDst) },
    { contender: 'ferry migrate --files, warm cache', wall_s: warm.wall.toFixed(2), sender_cpu_s: warm.cpu.toFixed(2), wire: fmtBytes(wire(warm.summary)), identical: !differs(src, fDst) },
  ]);
  console.log(`ferry / rsync delta wall-time ratio: cold ${ratio(delta.wall, rsDelta.wall)}, warm ${ratio(warm.wall, rsWarm.wall)}  (target ≤ 0.50)`);
  const recvRss = peakRssMb(recv.child.pid);
  await stop(recv.child);
  console.log(`peak RSS: agent ${Math.max(full.rssMb, delta.rssMb, warm.rssMb).toFixed(0)} MB, receiver ${recvRss.toFixed(0)} MB`);

  if (process.env.FERRY_BENCH_MILLION !== '0') {
    rmSync(dir, { recursive: true, force: true });
    const big = join(dir, 'million');
    mkdirSync(big, { recursive: true });
    console.log('\n# generating 1,000,000 small files …');
    for (let i = 0; i < 1_000_000; i++) {
      const d = join(big, `d${Math.floor(i / 1000)}`);
      if (i % 1000 === 0) mkdirSync(d);
      writeFileSync(join(d, `f${i}`), `${i}\n`);
    }
    const dst = join(dir, 'million-dst');
    mkdirSync(dst);
    const r2 = await startReceiver(join(dir, 'receiver-m'), dst);
    const m = await ferryPass(big, r2);
    const r2Rss = peakRssMb(r2.child.pid);
    await stop(r2.child);
    table('1,000,000-file tree, full pass', [{ wall_s: m.wall.toFixed(2), agent_peak_rss_MB: m.rssMb.toFixed(0), receiver_peak_rss_MB: r2Rss.toFixed(0) }]);
  }
  rmSync(dir, { recursive: true, force: true });
}
