// Flushing one file system (syncfs) without forking this process for it.
// Node has no syncfs, and `sync -f PATH` is a program: starting a program
// from Node forks the whole process (libuv 1.46 forks; no vfork or
// posix_spawn on Linux), and afterwards every page the process writes takes
// a copy-on-write fault once. On this project's VMs a fault costs about
// 20 µs: a process rewriting 120 MB of buffers spent 7.5 s of CPU instead of
// 0.35 s when it started `true` twelve times meanwhile (372,000 faults). A
// receiver flushes its target at every commit of a file pass (every 32 MiB)
// while its buffers and heap are busy, so each flush was such a fork.
// Here one small shell, started with the receiver (or at the first flush),
// forks instead: it reads `ID PATH` lines and answers `ID STATUS MESSAGE`
// for each `sync -f`, which it runs in the background, so flushes of
// different file systems still run side by side. A path it cannot be told on
// one line (a newline in it), or a helper that cannot start or has died,
// falls back to exec(); a flush that does not answer in time kills the
// helper (the next one starts a new one).
// Owns: the helper process. The helper exits when this process does (end of
// its input).

import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { ExecError } from '../errors/ferry-error.js';
import { exec, toolEnvironment } from './exec.js';

// POSIX sh: `read -r` of the whole line, the id up to the first space, the path after it (spaces kept).
const SCRIPT = `while IFS= read -r line; do
  id=\${line%% *}; p=\${line#* }
  ( out=$(sync -f -- "$p" 2>&1); rc=$?; printf '%s %s %s\\n' "$id" "$rc" "$(printf '%s' "$out" | tr '\\n\\r' '  ' | cut -c1-300)" ) &
done`;

interface Waiting {
  path: string;
  timeoutMs: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

let helper: { child: ChildProcess; waiting: Map<number, Waiting> } | undefined;
let nextId = 1;

/**
 * Flushes the file system holding `path` (syncfs, through `sync -f`). Rejects with an ExecError: FERRY_TOOL_MISSING,
 * FERRY_TOOL_TIMEOUT or FERRY_TOOL_FAILED (sync's status and first 300 bytes of its output), as exec() would.
 */
export function syncFileSystem(path: string, timeoutMs = 600_000): Promise<void> {
  if (/[\n\r]/.test(path)) return viaExec(path, timeoutMs);
  const h = helper ?? startHelper();
  if (!h) return viaExec(path, timeoutMs);
  const id = nextId++;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      h.waiting.delete(id);
      reject(new ExecError('FERRY_TOOL_TIMEOUT', `sync -f ${path}: no answer within ${timeoutMs} ms`, `sync -f ${path}`, null, ''));
      stopHelper(h);
    }, timeoutMs);
    h.waiting.set(id, { path, timeoutMs, resolve, reject, timer });
    h.child.stdin!.write(`${id} ${path}\n`);
  });
}

/**
 * Starts the helper now, while this process is still small (a receiver at
 * its start): the first flush then forks nothing either. Optional: a flush
 * without it starts the helper itself.
 */
export function startSyncHelper(): void {
  if (!helper) startHelper();
}

/** The helper's pid while it runs. For the tests (every flush goes through the same small process). */
export function syncHelperPid(): number | undefined {
  return helper?.child.pid;
}

function viaExec(path: string, timeoutMs: number): Promise<void> {
  return exec('sync', ['-f', '--', path], { timeoutMs }).then(() => undefined);
}

function startHelper(): typeof helper {
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'], env: toolEnvironment({ ...process.env, LC_ALL: 'C', LANG: 'C' }) });
  } catch {
    return undefined;
  }
  const h = { child, waiting: new Map<number, Waiting>() };
  helper = h;
  // Idle, the helper keeps nothing alive; a flush waiting keeps its own timer.
  child.unref();
  (child.stdin as unknown as Socket).unref?.();
  (child.stdout as unknown as Socket).unref?.();
  child.stdin!.on('error', () => {});
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (s: string) => {
    buf += s;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = /^(\d+) (\d+) ?(.*)$/.exec(line);
      const w = m ? h.waiting.get(Number(m[1])) : undefined;
      if (!m || !w) continue;
      h.waiting.delete(Number(m[1]));
      clearTimeout(w.timer);
      const status = Number(m[2]);
      const shown = `sync -f ${w.path}`;
      // 127: the shell found no `sync` (as exec() says of a missing tool).
      if (status === 0) w.resolve();
      else if (status === 127) w.reject(new ExecError('FERRY_TOOL_MISSING', 'sync: not installed (not found on PATH)', shown, null, m[3]!));
      else w.reject(new ExecError('FERRY_TOOL_FAILED', `${shown}: exit code ${status}${m[3]!.trim() ? `: ${m[3]!.trim()}` : ''}`, shown, status, m[3]!));
    }
  });
  const gone = () => {
    if (helper === h) helper = undefined;
    // Whatever it had not answered runs the old way.
    for (const [id, w] of h.waiting) {
      h.waiting.delete(id);
      clearTimeout(w.timer);
      viaExec(w.path, w.timeoutMs).then(w.resolve, w.reject);
    }
  };
  child.on('error', gone);
  child.on('exit', gone);
  return h;
}

function stopHelper(h: NonNullable<typeof helper>): void {
  if (helper === h) helper = undefined;
  h.child.kill('SIGKILL');
}
