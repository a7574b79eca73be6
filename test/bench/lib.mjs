// Shared benchmark plumbing: timing commands with GNU time (wall, user+sys
// CPU, peak RSS), free ports on loopback, an rsync daemon, and printing
// side-by-side tables. Benchmarks never assert: they measure and print.

import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FERRY = process.env.FERRY_BENCH_BIN ?? join(ROOT, 'dist/cli/bin.js');
export const WORK = process.env.FERRY_BENCH_DIR ?? join(ROOT, '.bench-work');

// ferry as installed runs through its launcher (packaging/ferry-launcher.sh),
// and the agent's service through its systemd unit: both give node
// MALLOC_ARENA_MAX=2 (glibc keeps a malloc arena per thread otherwise). The
// benchmarks run dist/cli/bin.js with node directly, so they give the same
// environment to every process they start (tar, lz4 and socat are single-
// threaded: one arena either way). FERRY_BENCH_ARENAS=default leaves glibc's
// default (as `node dist/cli/bin.js` run by hand from a checkout has it).
if (process.env.FERRY_BENCH_ARENAS === 'default') delete process.env.MALLOC_ARENA_MAX;
else process.env.MALLOC_ARENA_MAX ??= '2';

/**
 * node's flags as the launcher gives them (its `node_flags=` line: V8's young
 * generation), for every ferry process a benchmark starts. FERRY_BENCH_NODE_FLAGS=none
 * leaves them out (V8's defaults, as `node dist/cli/bin.js` run by hand has them).
 */
function launcherNodeFlags() {
  const text = readFileSync(join(ROOT, 'packaging/ferry-launcher.sh'), 'utf8');
  const m = /^node_flags='([^']*)'$/m.exec(text);
  if (!m) throw new Error("packaging/ferry-launcher.sh has no node_flags='…' line");
  return m[1].split(' ').filter(Boolean);
}
export const NODE_FLAGS = process.env.FERRY_BENCH_NODE_FLAGS === 'none' ? [] : launcherNodeFlags();

/** What the benchmark's header says about the malloc arenas and node flags of the ferry processes it starts. */
export const ARENAS = `${
  process.env.MALLOC_ARENA_MAX ? `MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX}` : "glibc's default malloc arenas (FERRY_BENCH_ARENAS=default)"
}, node ${NODE_FLAGS.length ? NODE_FLAGS.join(' ') : "with V8's default heap sizes (FERRY_BENCH_NODE_FLAGS=none)"} (ferry's launcher gives both; the agent's unit runs through it)`;

export function sh(cmd, opts = {}) {
  return execFileSync('bash', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28, ...opts });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * Runs `bash -c cmd` under GNU time. Returns wall seconds, CPU seconds
 * (user+sys of the whole process tree that was waited for) and peak RSS (MB)
 * of the largest single process, plus stdout.
 */
export function timed(cmd, { env } = {}) {
  return new Promise((resolve, reject) => {
    const tf = join(WORK, `time-${process.pid}-${Date.now()}.txt`);
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', tf, 'bash', '-c', cmd], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      let times;
      try {
        times = code === 0 ? readFileSync(tf, 'utf8') : undefined;
      } finally {
        // GNU time's report, read: one file per timed command was left in the work directory.
        rmSync(tf, { force: true });
      }
      if (code !== 0) {
        reject(new Error(`${cmd}: exit ${code}\n${err.slice(-3000)}`));
        return;
      }
      const [, user, sys, maxKb] = times.trim().split('\n').pop().split(' ').map(Number);
      resolve({ wall, cpu: user + sys, rssMb: maxKb / 1024, stdout: out, stderr: err });
    });
  });
}

/** Starts a long-running process; resolves once `ready` matches a stdout line. */
export function startProcess(file, args, ready, { env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${file} did not become ready: ${err.slice(-2000)}`)), 30_000);
    child.stderr.on('data', (b) => (err += b));
    child.stdout.on('data', (b) => {
      buf += b;
      if (ready.test(buf)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited (${code}) before ready: ${err.slice(-2000)}`));
    });
  });
}

export function stop(child) {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

/** Peak RSS of a live process (VmHWM), in MB. */
export function peakRssMb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system, all threads) a running process has used so far. */
export function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * An rsync daemon on loopback serving `dir` as module `bench` (writable). Chrooted: without a chroot the daemon
 * sanitizes every symlink's target (a leading / dropped, and the ../ that climb above the module), so its copy of
 * a tree's absolute symlinks was wrong and each delta made them again (s36: 324 of the usr tree's man-page links).
 */
export async function startRsyncDaemon(dir) {
  const port = await freePort();
  const conf = join(WORK, `rsyncd-${port}.conf`);
  writeFileSync(
    conf,
    `pid file = ${join(WORK, `rsyncd-${port}.pid`)}\nuse chroot = yes\nmunge symlinks = no\n[bench]\n  path = ${dir}\n  read only = no\n  uid = root\n  gid = root\n`,
  );
  const child = spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--port=${port}`, '--address=127.0.0.1'], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      sh(`rsync rsync://127.0.0.1:${port}/ >/dev/null 2>&1`);
      return { child, url: `rsync://127.0.0.1:${port}/bench` };
    } catch {
      /* not up yet */
    }
  }
  throw new Error('rsync daemon did not start');
}

/** "Total bytes sent" etc. from rsync --stats, sender side. */
export function rsyncWireBytes(statsText) {
  const sent = Number((statsText.match(/Total bytes sent: ([\d,]+)/) ?? [])[1]?.replace(/,/g, '') ?? NaN);
  const recv = Number((statsText.match(/Total bytes received: ([\d,]+)/) ?? [])[1]?.replace(/,/g, '') ?? NaN);
  return sent + recv;
}

export function ensureWork() {
  mkdirSync(WORK, { recursive: true });
  return WORK;
}

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return 'n/a';
  if (n >= GiB) return `${(n / GiB).toFixed(2)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export function table(title, rows) {
  const cols = Object.keys(rows[0]);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals) => vals.map((v, i) => String(v).padEnd(widths[i])).join('  ');
  console.log(`\n## ${title}`);
  console.log(line(cols));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => r[c])));
}

export function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : 'n/a';
}

export function dropCaches() {
  try {
    sh('sync; echo 3 > /proc/sys/vm/drop_caches');
  } catch {
    /* not root: caches stay warm for both contenders alike */
  }
}

export { existsSync };

// --- Repeated runs (issue 14): figures are medians of alternating runs.

/** The median of a list of numbers (the mean of the middle two for an even count). */
export function median(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * CPU seconds (user + system) of a running process and of its children it
 * has waited for: a daemon's forked workers count once they have exited.
 */
export function cpuSecondsWithChildren(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return NaN;
  }
}

/** Whether dropCaches can work here (root); the benches print the cache state they got. */
export function canDropCaches() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Waits (up to `timeoutMs`) until `pid` has no child processes left, so that
 * their CPU time has reached its counters (cpuSecondsWithChildren): a daemon
 * reaps a connection's worker a moment after the client has gone.
 */
export async function childrenSettled(pid, timeoutMs = 3000) {
  const { readdirSync } = await import('node:fs');
  const until = Date.now() + timeoutMs;
  for (;;) {
    let kids = '';
    try {
      for (const t of readdirSync(`/proc/${pid}/task`)) kids += readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    } catch {
      return;
    }
    if (kids === '' || Date.now() > until) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The resident agent (resident-agent.mjs) on the build whose CLI is `bin` (its dist/ is two levels up),
 * started with node's flags `nodeOpts`: `pass(request)` runs one pass in it and resolves to its answer
 * ({wallMs, cpuS, summary}); `child` is its process.
 */
export async function startResidentAgent(nodeOpts, bin = FERRY) {
  const child = spawn(process.execPath, [...nodeOpts, join(ROOT, 'test/bench/resident-agent.mjs'), dirname(dirname(bin))], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the resident agent exited');
    return value;
  };
  if ((await next()) !== 'ready') throw new Error('the resident agent did not start');
  const pass = async (request) => {
    child.stdin.write(`${JSON.stringify(request)}\n`);
    const r = JSON.parse(await next());
    if (r.error) throw new Error(`resident pass failed: ${r.error}`);
    return r;
  };
  return { child, pass };
}
