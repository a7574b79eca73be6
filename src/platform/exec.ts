// Running external programs: always with a timeout, never through a shell,
// with bounded captured output. Callers get stdout as text or an ExecError
// whose code says whether the tool is missing (FERRY_TOOL_MISSING), timed out
// (FERRY_TOOL_TIMEOUT) or failed (FERRY_TOOL_FAILED).
// Tools are the host's (blkid, lsblk, lvs, mkfs.*, btrfs …): they run with the
// host's libraries and never see a variable the packaged runtime set
// (toolEnvironment), whatever environment the caller passes.

import { spawn } from 'node:child_process';
import { ExecError } from '../errors/ferry-error.js';

export interface ExecOptions {
  /** Milliseconds before the child is killed. Default 15 s. */
  timeoutMs?: number;
  /** Exit codes that count as success. Default [0]. */
  okCodes?: number[];
  /** Bytes of stdout kept at most; beyond that the child is killed. Default 64 MiB. */
  maxOutput?: number;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Open descriptors the child gets as fd 3, 4, … (the tool is told /dev/fd/3, not a path: it reads the inode the caller opened). */
  fds?: number[];
}

/**
 * Variables the packaged launcher (packaging/ferry-launcher.sh) or its runtime
 * may set for ferry itself. The bundled C libraries reach node through the
 * loader's --library-path, never LD_LIBRARY_PATH/LD_PRELOAD, so the host's own
 * values of those are left alone.
 */
const BUNDLE_VARIABLE = /^(FERRY_LAUNCHER|FERRY_RUNTIME_\w*)$/;

/** `env` without anything the bundle set: what a host tool gets. */
export function toolEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!BUNDLE_VARIABLE.test(k)) out[k] = v;
  return out;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export function exec(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const okCodes = options.okCodes ?? [0];
  const maxOutput = options.maxOutput ?? 64 * 1024 * 1024;
  const shown = [file, ...args].join(' ');

  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', ...(options.fds ?? [])],
      env: toolEnvironment(options.env ?? { ...process.env, LC_ALL: 'C', LANG: 'C' }),
      cwd: options.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let killedFor: 'timeout' | 'output' | undefined;

    const timer = setTimeout(() => {
      killedFor = 'timeout';
      child.kill('SIGKILL');
    }, timeoutMs);

    child.stdout!.on('data', (b: Buffer) => {
      outLen += b.length;
      if (outLen > maxOutput) {
        killedFor = 'output';
        child.kill('SIGKILL');
        return;
      }
      out.push(b);
    });
    child.stderr!.on('data', (b: Buffer) => {
      if (errLen < 1024 * 1024) err.push(b);
      errLen += b.length;
    });
    if (options.input !== undefined) {
      child.stdin!.on('error', () => {});
      child.stdin!.end(options.input);
    }

    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const missing = e.code === 'ENOENT';
      reject(
        new ExecError(
          missing ? 'FERRY_TOOL_MISSING' : 'FERRY_TOOL_FAILED',
          missing ? `${file}: not installed (not found on PATH)` : `${shown}: ${e.message}`,
          shown,
          null,
          '',
        ),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (killedFor === 'timeout') {
        reject(new ExecError('FERRY_TOOL_TIMEOUT', `${shown}: no answer within ${timeoutMs} ms, killed`, shown, null, stderr));
        return;
      }
      if (killedFor === 'output') {
        reject(new ExecError('FERRY_TOOL_FAILED', `${shown}: printed more than ${maxOutput} bytes, killed`, shown, null, stderr));
        return;
      }
      if (code === null || !okCodes.includes(code)) {
        const why = code === null ? `killed by ${signal}` : `exit code ${code}`;
        const tail = stderr.trim().split('\n').slice(-3).join(' | ');
        reject(new ExecError('FERRY_TOOL_FAILED', `${shown}: ${why}${tail ? `: ${tail}` : ''}`, shown, code, stderr));
        return;
      }
      resolve({ stdout, stderr, exitCode: code });
    });
  });
}

/** True when `name` is an executable on PATH (or an absolute path that exists). */
export async function hasTool(name: string): Promise<boolean> {
  const { access, constants } = await import('node:fs/promises');
  const { delimiter, join } = await import('node:path');
  const candidates = name.includes('/')
    ? [name]
    : [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'].filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return true;
    } catch {
      /* keep looking */
    }
  }
  return false;
}
