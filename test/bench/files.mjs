// File-level replication benchmark (issues 6 and 14). Sources live on an
// ext4 loop file system, targets on an xfs loop file system (each contender
// its own directory there; FERRY_BENCH_TARGET_FS below), as on a real migration. Cases:
//   usr:       a tree built from this machine's /usr (copies of
//              /usr/share/man, /usr/include, /usr/share/doc, /usr/lib/python3
//              — those that exist), one 300 MB sparse file, hard links,
//              files with user.* xattrs and POSIX ACLs (about 40,000 entries)
//   generated: 100,000 generated files (mostly small text, one in 5,000 a
//              4–32 MiB binary; about 800 MiB)
//   million:   1,000,000 one-line files (on the same loop file systems), full
//              pass: agent and receiver peak RSS
// For usr and generated, in the same run:
//   full copy: ferry migrate --files → ferry receive (fresh receiver)
//              vs tar --xattrs --acls --sparse | lz4 -1 | socat → socat | lz4 -d | tar x
//   delta:     after a fresh change of a few percent of the tree before each
//              contender (files modified, added, deleted, chmod'ed),
//              ferry vs rsync -aHAX --delete --numeric-ids through an rsync
//              daemon on loopback, cold (caches dropped) and warm; ferry
//              both one-shot (`ferry migrate`) and resident
//              ("ferry-resident": resident-agent.mjs, passes in one
//              long-lived process, as the agent daemon runs them)
// Every measurement is FERRY_BENCH_RUNS (default 3) alternating runs of
// both contenders (who goes first alternates); the individual runs and the
// median are printed, with the cache state, wall time, CPU seconds of each
// side, bytes on the wire, peak RSS and the ratio of the medians.
// Knobs: FERRY_BENCH_CASES=usr,generated,million (FERRY_BENCH_MILLION=0
// drops the last), FERRY_BENCH_FILES (generated count), FERRY_BENCH_CHANGE
// (fraction of files changed before each delta, default 0.02),
// FERRY_BENCH_NODE_OPTIONS (passed to ferry's processes after the
// launcher's node flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`;
// FERRY_BENCH_NODE_FLAGS=none leaves the launcher's out, lib.mjs), FERRY_BENCH_PARTS=full,delta (default both;
// `delta` alone seeds ferry's target with one untimed full pass instead of
// the timed full copies), FERRY_BENCH_CACHES=cold,warm (the deltas' cache
// states, default both), FERRY_BENCH_BEFORE=/path/to/other/dist/cli/bin.js
// (deltas only: a third contender, "ferry-before", that build's agent and
// receiver with a target of their own, alternating with the other two: a
// before/after comparison in the same conditions), FERRY_BENCH_TARGET_FS=xfs|btrfs
// and FERRY_BENCH_TARGET_GIB (the target file system, default xfs of 8 GiB;
// `btrfs` with 2 shows a small btrfs target, see BTRFS_FLUSH_FREE_BYTES in
// receiver/file-extractor.ts). Needs root (loop devices, mounts, drop_caches).

import { mkdirSync, writeFileSync, rmSync, readFileSync, appendFileSync, existsSync, statSync, chmodSync, unlinkSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import {
  FERRY, NODE_FLAGS, WORK, MiB, sh, freePort, timed, startProcess, stop, peakRssMb, startRsyncDaemon, rsyncWireBytes, startResidentAgent,
  ensureWork, fmtBytes, table, ratio, dropCaches, cpuSeconds,
} from './lib.mjs';

const RUNS = Number(process.env.FERRY_BENCH_RUNS ?? 3);
const FILES = Number(process.env.FERRY_BENCH_FILES ?? 100_000);
const CHANGE = Number(process.env.FERRY_BENCH_CHANGE ?? 0.02);
const CASES = (process.env.FERRY_BENCH_CASES ?? 'usr,generated,million')
  .split(',')
  .filter((c) => !(c === 'million' && process.env.FERRY_BENCH_MILLION === '0'));
const NODE_OPTS = [...NODE_FLAGS, ...(process.env.FERRY_BENCH_NODE_OPTIONS ?? '').split(' ')].filter(Boolean).join(' ');
const PARTS = (process.env.FERRY_BENCH_PARTS ?? 'full,delta').split(',');
const CACHES = (process.env.FERRY_BENCH_CACHES ?? 'cold,warm').split(',');
const BEFORE = process.env.FERRY_BENCH_BEFORE;
const WORDS = 'alpha beta gamma delta server disk volume block chunk replica ferry migrate cloud target source kernel'.split(' ');
const USR_DIRS = ['/usr/share/man', '/usr/include', '/usr/share/doc', '/usr/lib/python3'];
const TAR_META = "--xattrs --xattrs-include='*' --acls";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function text(bytes) {
  let s = '';
  while (s.length < bytes) s += `${WORDS[randomInt(WORDS.length)]} ${randomInt(1e6)}${randomInt(8) === 0 ? '\n' : ' '}`;
  return s.slice(0, bytes);
}

// ---------------------------------------------------------------- loop file systems

/** A file system on a loop device over a sparse image file, mounted at `mnt`. */
function loopFs(name, sizeGiB, type) {
  const img = join(WORK, `${name}.img`);
  const mnt = join(WORK, name);
  rmSync(img, { force: true });
  sh(`truncate -s ${sizeGiB}G ${img}`);
  const dev = sh(`losetup --find --show ${img}`).trim();
  mkdirSync(mnt, { recursive: true });
  const mkfs = () =>
    sh(type === 'xfs' ? `mkfs.xfs -q -f -K ${dev}` : type === 'btrfs' ? `mkfs.btrfs -q -f -K ${dev}` : `mkfs.ext4 -q -F -E nodiscard -N 1200000 ${dev}`);
  mkfs();
  sh(`mount ${dev} ${mnt}`);
  return {
    mnt,
    /** A fresh, empty file system (a target for a full copy). */
    remake() {
      sh(`umount ${mnt}`);
      mkfs();
      sh(`mount ${dev} ${mnt}`);
    },
    destroy() {
      sh(`umount ${mnt} || umount -l ${mnt} || true; losetup -d ${dev} || true`);
      rmSync(img, { force: true });
    },
  };
}

// ---------------------------------------------------------------- trees

/** The usr tree: copies of /usr parts, a 300 MB sparse file, hard links, xattrs, ACLs. */
export function buildUsrTree(root) {
  mkdirSync(root, { recursive: true });
  for (const d of USR_DIRS) if (existsSync(d)) sh(`cp -a ${d} ${root}/${d.slice(1).replace(/\//g, '_')}`);
  mkdirSync(join(root, 'var'), { recursive: true });
  const sparse = join(root, 'var', 'sparse.img');
  sh(`truncate -s 300M ${sparse}`);
  for (let k = 0; k < 10; k++) sh(`dd if=/dev/urandom of=${sparse} bs=1M count=2 seek=${k * 30} conv=notrunc status=none`);
  const files = listFiles(root);
  // Hard links: 300 files get a second name in links/, 100 a third beside them.
  mkdirSync(join(root, 'links'));
  const pick = (n, seed) => Array.from({ length: n }, (_, i) => files[(seed + i * 97) % files.length]);
  pick(300, 11).forEach((f, i) => {
    try {
      sh(`ln ${JSON.stringify(join(root, f))} ${join(root, 'links', `l${i}`)}`);
      if (i < 100) sh(`ln ${JSON.stringify(join(root, f))} ${JSON.stringify(join(root, `${f}.hardlink`))}`);
    } catch {
      /* a name clash: one link fewer */
    }
  });
  // xattrs and ACLs on 500 files each, default ACLs on 20 directories.
  const listFile = join(WORK, 'bench-list');
  writeFileSync(listFile, pick(500, 23).map((f) => join(root, f)).join('\0'));
  sh(`xargs -0 setfattr -n user.ferry.note -v "bench note" < ${listFile}`);
  writeFileSync(listFile, pick(500, 41).map((f) => join(root, f)).join('\0'));
  sh(`xargs -0 setfacl -m u:1001:rw-,g:1002:r-- < ${listFile}`);
  sh(`find ${root} -mindepth 2 -maxdepth 2 -type d | head -20 | xargs -d '\\n' setfacl -d -m u:1001:rwx`);
  rmSync(listFile);
}

/** `count` files in directories of 1,000; one in 5,000 is a 4–32 MiB binary. */
function buildGeneratedTree(root, count) {
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
  }
}

/** Regular files under root (relative paths), the sparse file left out. */
export function listFiles(root) {
  return sh(`cd ${root} && find . -type f ! -name sparse.img -printf '%P\\n'`).split('\n').filter(Boolean);
}

function treeFacts(root) {
  const entries = Number(sh(`find ${root} | wc -l`).trim());
  const bytes = Number(sh(`du -sb --apparent-size ${root} | cut -f1`).trim());
  const used = Number(sh(`du -sB1 ${root} | cut -f1`).trim());
  return `${entries} entries, ${fmtBytes(bytes)} apparent (${fmtBytes(used)} allocated)`;
}

/**
 * A fresh change of `CHANGE` of the files: 40% get text appended, 20% a
 * mode change, 20% are deleted, and as many new files appear in their
 * directories. `files` (relative paths) is kept current.
 */
export function changeTree(root, files) {
  const n = Math.max(10, Math.round(files.length * CHANGE));
  for (let i = 0; i < n; i++) {
    const k = randomInt(files.length);
    const f = files[k];
    const abs = join(root, f);
    const what = i % 5;
    try {
      if (what <= 1) appendFileSync(abs, text(300));
      else if (what === 2) chmodSync(abs, statSync(abs).mode ^ 0o020);
      else if (what === 3) {
        unlinkSync(abs);
        files[k] = files[files.length - 1];
        files.pop();
      } else {
        const rel = `${f}.new${randomInt(1e9)}`;
        writeFileSync(join(root, rel), text(200 + randomInt(8000)));
        files.push(rel);
      }
    } catch {
      /* already gone (a second name of a hard link): one change fewer */
    }
  }
  sh('sync');
  return n;
}

// ---------------------------------------------------------------- contenders

async function startReceiver(dataDir, target, bin = FERRY) {
  const port = await freePort();
  const args = [...(NODE_OPTS ? NODE_OPTS.split(' ') : []), bin, 'receive', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--target', `tree=${target}`];
  const child = await startProcess(process.execPath, args, /fingerprint/i);
  const info = JSON.parse(readFileSync(join(dataDir, 'receiver.json'), 'utf8'));
  // The agent's manifests (what `ferry migrate --state` keeps between passes).
  return { child, port, info, stateDir: `${dataDir}-agent-state`, bin };
}

/** Resets a process's peak RSS (VmHWM), so that the next reading is this run's. */
function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    /* older kernel: the peak is the process's lifetime peak */
  }
}

/** CPU seconds of a process and its reaped children (an rsync daemon forks one per connection). */
function cpuWithChildren(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return NaN;
  }
}

async function ferryRun(src, recv, { cold, dst, contender = 'ferry' }) {
  if (cold) dropCaches();
  resetPeak(recv.child.pid);
  const c0 = cpuSeconds(recv.child.pid);
  const r = await timed(
    `node ${NODE_OPTS} ${recv.bin} migrate --to 127.0.0.1:${recv.port} --token ${recv.info.token} --fingerprint ${recv.info.fingerprint} --files ${src}=tree --state ${recv.stateDir} --json${dst ? ` && sync -f ${dst}` : ''}`,
  );
  const summary = JSON.parse(r.stdout.trim().split('\n').pop())[0];
  return {
    contender, wall: r.wall, sendCpu: r.cpu, recvCpu: cpuSeconds(recv.child.pid) - c0,
    wire: summary.bytesOnWire, sendRss: r.rssMb, recvRss: peakRssMb(recv.child.pid), pass: summary.pass,
  };
}

/** A pass in the resident agent (resident-agent.mjs: passes in one long-lived process, as the daemon runs them). */
async function residentRun(agent, src, recv, { cold }) {
  if (cold) dropCaches();
  resetPeak(recv.child.pid);
  resetPeak(agent.child.pid);
  const c0 = cpuSeconds(recv.child.pid);
  const receiver = { host: '127.0.0.1', port: recv.port, token: recv.info.token, fingerprint: recv.info.fingerprint };
  const r = await agent.pass({ kind: 'file', source: src, target: 'tree', stateDir: recv.stateDir, receiver });
  return {
    contender: 'ferry-resident', wall: r.wallMs / 1000, sendCpu: r.cpuS, recvCpu: cpuSeconds(recv.child.pid) - c0,
    wire: r.summary.bytesOnWire, sendRss: peakRssMb(agent.child.pid), recvRss: peakRssMb(recv.child.pid), pass: r.summary.pass,
  };
}

async function tarRun(src, dst) {
  const port = await freePort();
  const count = join(WORK, 'pipe-bytes');
  dropCaches();
  const t0 = process.hrtime.bigint();
  const pr = timed(
    `socat -u TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr - | tee >(wc -c > ${count}) | lz4 -d -c | tar ${TAR_META} --numeric-owner -xpf - -C ${dst} && sync -f ${dst}`,
  );
  await new Promise((r) => setTimeout(r, 300));
  const t1 = process.hrtime.bigint();
  const ps = await timed(`tar -C ${src} ${TAR_META} --sparse -cf - . | lz4 -1 -c | socat -u - TCP:127.0.0.1:${port}`);
  const rr = await pr;
  // From the sender's start to the receiver's sync (the listener's 300 ms head start excluded).
  const wall = Number(process.hrtime.bigint() - t1) / 1e9;
  void t0;
  return {
    contender: 'tar | lz4 | socat', wall, sendCpu: ps.cpu, recvCpu: rr.cpu,
    wire: Number(readFileSync(count, 'utf8').trim()), sendRss: ps.rssMb, recvRss: rr.rssMb,
  };
}

/** rsync's xattr filters for an ext4 tree onto xfs: see rsyncRun. */
const RSYNC_XATTR_FILTERS = "--filter='-x system.*' --filter='-x trusted.SGI_ACL_*'";

async function rsyncRun(src, daemon, { cold }) {
  if (cold) dropCaches();
  const c0 = cpuWithChildren(daemon.child.pid);
  // Without the second filter, rsync (as root, onto xfs) removes the trusted.SGI_ACL_* names xfs lists for every
  // ACL, which the ext4 source has not: removing one removes the ACL itself. Each delta then stripped and set again
  // the ACLs of about 800 entries, and often left them stripped (s36: the "rsync NO (823 …)" of earlier runs).
  // The first: any -x rule replaces rsync's own skip of system.* names, and the ACLs already travel by -A.
  const r = await timed(`rsync -aHAX --delete --numeric-ids ${RSYNC_XATTR_FILTERS} --stats ${src}/ ${daemon.url}/`);
  // The daemon reaps its per-connection child shortly after the client ends.
  await new Promise((res) => setTimeout(res, 100));
  return {
    contender: 'rsync -aHAX --delete', wall: r.wall, sendCpu: r.cpu, recvCpu: cpuWithChildren(daemon.child.pid) - c0,
    wire: rsyncWireBytes(r.stdout), sendRss: r.rssMb, recvRss: NaN,
  };
}

/** 'yes' when rsync -aHAX finds nothing to change from a to b, else the count and the first differences. */
function differs(a, b) {
  // xfs shows root its ACLs also as trusted.SGI_ACL_* attributes, which the ext4 source has not: not a difference.
  const out = sh(`rsync -aHAX --numeric-ids ${RSYNC_XATTR_FILTERS} --dry-run --itemize-changes --delete ${a}/ ${b}/`).trim();
  if (out === '') return 'yes';
  const lines = out.split('\n');
  return `NO (${lines.length}: ${lines.slice(0, 3).join('; ')})`;
}

// ---------------------------------------------------------------- reporting

function runRows(runs, cache) {
  return runs.map((r) => ({
    run: r.n, contender: r.contender, cache, wall_s: r.wall.toFixed(2), agent_cpu_s: r.sendCpu.toFixed(2),
    receiver_cpu_s: Number.isFinite(r.recvCpu) ? r.recvCpu.toFixed(2) : 'n/a', wire: fmtBytes(r.wire),
    agent_rss_MB: r.sendRss.toFixed(0), receiver_rss_MB: Number.isFinite(r.recvRss) ? r.recvRss.toFixed(0) : 'n/a',
  }));
}

const summaries = [];

function summarize(label, runs, cache, goal, mine = 'ferry', other = (c) => c !== 'ferry') {
  const ours = runs.filter((r) => r.contender === mine);
  const theirs = runs.filter((r) => other(r.contender));
  const m = (rs, k) => median(rs.map((r) => r[k]));
  const q = ratio(m(ours, 'wall'), m(theirs, 'wall'));
  summaries.push({
    measurement: label, cache, runs: ours.length,
    ferry_wall_s: `${m(ours, 'wall').toFixed(2)} (${ours.map((r) => r.wall.toFixed(2)).join('/')})`,
    other_wall_s: `${m(theirs, 'wall').toFixed(2)} (${theirs.map((r) => r.wall.toFixed(2)).join('/')})`,
    ratio: q, goal: `≤ ${goal.toFixed(2)} ${Number(q) <= goal ? 'met' : 'NOT met'}`,
    cpu_agent_vs_other: `${m(ours, 'sendCpu').toFixed(2)} / ${m(theirs, 'sendCpu').toFixed(2)}`,
    cpu_receivers: `${m(ours, 'recvCpu').toFixed(2)} / ${m(theirs, 'recvCpu').toFixed(2)}`,
    rss_agent_receiver_MB: `${Math.max(...ours.map((r) => r.sendRss)).toFixed(0)} / ${Math.max(...ours.map((r) => r.recvRss)).toFixed(0)}`,
  });
  console.log(`${label}, ${cache}: ${mine} / ${theirs[0].contender} median wall ratio ${q} (goal ≤ ${goal.toFixed(2)})`);
}

// ---------------------------------------------------------------- one case

async function treeCase(name, src, tgt) {
  console.log(`\n# ${name}: ${treeFacts(src)}`);
  const files = listFiles(src);

  // Full copies: a fresh target file system and a fresh receiver (first pass) for each run.
  const full = [];
  let recv = null;
  const ferryDst = join(tgt.mnt, 'ferry');
  if (!PARTS.includes('full')) {
    // Deltas only: one untimed full pass seeds ferry's target.
    tgt.remake();
    mkdirSync(ferryDst);
    const data = join(WORK, 'files', `receiver-${name}-seed`);
    rmSync(data, { recursive: true, force: true });
    rmSync(`${data}-agent-state`, { recursive: true, force: true });
    recv = await startReceiver(data, ferryDst);
    const seeded = await ferryRun(src, recv, { cold: false, dst: ferryDst });
    console.log(`ferry full pass (seeds its delta target, untimed part): ${seeded.wall.toFixed(2)} s wall, ${seeded.sendCpu.toFixed(2)} s agent CPU`);
  }
  for (let i = 0; PARTS.includes('full') && i < RUNS; i++) {
    const order = i % 2 === 0 ? ['tar', 'ferry'] : ['ferry', 'tar'];
    tgt.remake();
    for (const who of order) {
      const dst = join(tgt.mnt, who);
      mkdirSync(dst);
      if (who === 'tar') full.push({ n: i + 1, ...(await tarRun(src, dst)) });
      else {
        if (recv) await stop(recv.child);
        const data = join(WORK, 'files', `receiver-${name}-${i}`);
        rmSync(data, { recursive: true, force: true });
        rmSync(`${data}-agent-state`, { recursive: true, force: true });
        recv = await startReceiver(data, dst);
        full.push({ n: i + 1, ...(await ferryRun(src, recv, { cold: true, dst })) });
      }
    }
  }
  if (PARTS.includes('full')) {
    table(`${name}: full copy (caches dropped before each run)`, runRows(full, 'cold'));
    console.log(`identical (rsync -aHAX --dry-run): ferry ${differs(src, ferryDst)}, tar ${differs(src, join(tgt.mnt, 'tar'))}`);
    summarize(`${name}: full copy vs tar|lz4|socat`, full, 'cold', 0.8);
    rmSync(join(tgt.mnt, 'tar'), { recursive: true, force: true });
  }
  if (!PARTS.includes('delta')) {
    await stop(recv.child);
    return;
  }

  // The rsync daemon's copy, made by rsync itself.
  const rsDst = join(tgt.mnt, 'rsync');
  mkdirSync(rsDst);
  const daemon = await startRsyncDaemon(rsDst);
  const seed = await rsyncRun(src, daemon, { cold: true });
  console.log(`rsync -aHAX full copy (seeds its delta target): ${seed.wall.toFixed(2)} s wall, ${seed.sendCpu.toFixed(2)} s sender CPU, ${fmtBytes(seed.wire)} on the wire`);
  // The other build, if any: its own receiver and target, seeded untimed.
  let before = null;
  const beforeDst = join(tgt.mnt, 'before');
  if (BEFORE) {
    mkdirSync(beforeDst);
    const data = join(WORK, 'files', `receiver-${name}-before`);
    rmSync(data, { recursive: true, force: true });
    rmSync(`${data}-agent-state`, { recursive: true, force: true });
    before = await startReceiver(data, beforeDst, BEFORE);
    await ferryRun(src, before, { cold: false, dst: beforeDst, contender: 'ferry-before' });
  }
  // The resident agent has run a pass before any that is measured, as an installed agent has.
  const resident = await startResidentAgent(NODE_OPTS ? NODE_OPTS.split(' ') : []);
  await residentRun(resident, src, recv, { cold: false });
  const contenders = before ? ['ferry', 'ferry-resident', 'rsync', 'ferry-before'] : ['ferry', 'ferry-resident', 'rsync'];

  // Deltas: a fresh change before each run, so each contender sees the same kind of change.
  for (const cache of CACHES) {
    const runs = [];
    let changed = 0;
    for (let i = 0; i < RUNS; i++) {
      // Who goes first rotates.
      const order = contenders.map((_, k) => contenders[(i + k) % contenders.length]);
      for (const who of order) {
        changed = changeTree(src, files);
        const cold = cache === 'cold';
        const r =
          who === 'ferry' ? await ferryRun(src, recv, { cold })
          : who === 'ferry-resident' ? await residentRun(resident, src, recv, { cold })
          : who === 'ferry-before' ? await ferryRun(src, before, { cold, contender: 'ferry-before' })
          : await rsyncRun(src, daemon, { cold });
        if (r.pass && r.pass !== 'delta') throw new Error(`ferry ran a ${r.pass} pass where a delta was expected`);
        runs.push({ n: i + 1, ...r });
      }
    }
    table(`${name}: delta after changing ${changed} files (${(CHANGE * 100).toFixed(1)}%) before each run, ${cache} cache`, runRows(runs, cache));
    summarize(`${name}: delta vs rsync`, runs, cache, 0.5, 'ferry', (c) => c.startsWith('rsync'));
    summarize(`${name}: delta in the resident agent vs rsync`, runs, cache, 0.5, 'ferry-resident', (c) => c.startsWith('rsync'));
    if (before) summarize(`${name}: delta, this build vs FERRY_BENCH_BEFORE`, runs, cache, 1, 'ferry', (c) => c === 'ferry-before');
  }
  resident.child.stdin.end();
  await stop(resident.child);
  // One last pass each with the final tree: both copies must equal the source.
  await ferryRun(src, recv, { cold: false });
  await rsyncRun(src, daemon, { cold: false });
  if (before) await ferryRun(src, before, { cold: false, contender: 'ferry-before' });
  console.log(`identical after the deltas: ferry ${differs(src, ferryDst)}, rsync ${differs(src, rsDst)}${before ? `, ferry-before ${differs(src, beforeDst)}` : ''}`);
  if (before) await stop(before.child);
  await stop(daemon.child);
  await stop(recv.child);
}

async function millionCase(srcFs, dstFs, dir) {
  const big = join(srcFs, 'million');
  mkdirSync(big, { recursive: true });
  console.log('\n# million: generating 1,000,000 small files …');
  for (let i = 0; i < 1_000_000; i++) {
    const d = join(big, `d${Math.floor(i / 1000)}`);
    if (i % 1000 === 0) mkdirSync(d);
    writeFileSync(join(d, `f${i}`), `${i}\n`);
  }
  const dst = join(dstFs, 'million');
  mkdirSync(dst);
  const recv = await startReceiver(join(dir, 'receiver-m'), dst);
  const m = await ferryRun(big, recv, { cold: true });
  await stop(recv.child);
  table('million: 1,000,000-file tree, full pass (cold)', [
    { wall_s: m.wall.toFixed(2), agent_cpu_s: m.sendCpu.toFixed(2), receiver_cpu_s: m.recvCpu.toFixed(2), agent_peak_rss_MB: m.sendRss.toFixed(0), receiver_peak_rss_MB: m.recvRss.toFixed(0) },
  ]);
  summaries.push({
    measurement: 'million: full pass, peak RSS', cache: 'cold', runs: 1, ferry_wall_s: m.wall.toFixed(2), other_wall_s: '—', ratio: '—',
    goal: `< 200 MB ${m.sendRss < 200 && m.recvRss < 200 ? 'met' : 'NOT met'}`, cpu_agent_vs_other: m.sendCpu.toFixed(2), cpu_receivers: m.recvCpu.toFixed(2),
    rss_agent_receiver_MB: `${m.sendRss.toFixed(0)} / ${m.recvRss.toFixed(0)}`,
  });
}

export async function run() {
  ensureWork();
  const dir = join(WORK, 'files');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  console.log(`# file benchmark: cases ${CASES.join(', ')}; ${RUNS} alternating runs each; load ${sh('cut -d" " -f1-3 /proc/loadavg').trim()}`);
  const source = loopFs('files-src', 8, 'ext4');
  const targetFs = process.env.FERRY_BENCH_TARGET_FS ?? 'xfs';
  if (!['xfs', 'btrfs'].includes(targetFs)) throw new Error(`FERRY_BENCH_TARGET_FS=${targetFs}: xfs or btrfs`);
  const targetGiB = Number(process.env.FERRY_BENCH_TARGET_GIB ?? 8);
  if (!(targetGiB >= 1)) throw new Error(`FERRY_BENCH_TARGET_GIB=${process.env.FERRY_BENCH_TARGET_GIB}: a size in GiB, at least 1`);
  const target = loopFs('files-tgt', targetGiB, targetFs);
  console.log(`# target: ${targetFs}, ${targetGiB} GiB`);
  try {
    if (CASES.includes('usr')) {
      const src = join(source.mnt, 'usr');
      buildUsrTree(src);
      await treeCase('usr', src, target);
      // A fresh file system is far quicker than removing the tree.
      source.remake();
    }
    if (CASES.includes('generated')) {
      const src = join(source.mnt, 'generated');
      console.log(`\n# generating ${FILES} files …`);
      buildGeneratedTree(src, FILES);
      await treeCase('generated', src, target);
      source.remake();
    }
    if (CASES.includes('million')) {
      target.remake();
      await millionCase(source.mnt, target.mnt, dir);
    }
  } finally {
    source.destroy();
    target.destroy();
  }
  rmSync(dir, { recursive: true, force: true });
  if (summaries.length) table('file benchmark: goals (median of the alternating runs; individual runs in brackets)', summaries);
  console.log(`\nfile benchmark took ${((Date.now() - started) / 1000).toFixed(0)} s; load ${sh('cut -d" " -f1-3 /proc/loadavg').trim()}`);
}
