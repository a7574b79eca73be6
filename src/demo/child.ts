// One ferry subcommand run as a child process of the demo: the same ferry
// (its packaged launcher, else process.execPath + this build's bin.js:
// platform/self-command.ts), its output kept in a small
// ring buffer (never echoed; shown scrubbed of secrets when the demo fails),
// waiting for its "listening" line, and a clean stop (SIGTERM, then SIGKILL
// after a deadline).

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../errors/ferry-error.js';
import { selfCommand } from '../platform/self-command.js';

/** ferry's own executable script, beside this build's cli/ folder. */
export const FERRY_BIN = fileURLToPath(new URL('../cli/bin.js', import.meta.url));

const KEEP_LINES = 200;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class FerryChild {
  readonly pid: number;
  readonly exited: Promise<ChildExit>;
  private readonly proc: ChildProcess;
  private readonly lines: string[] = [];
  private partial = '';
  private readonly listeners = new Set<(line: string) => void>();
  private exit: ChildExit | undefined;

  constructor(
    readonly role: string,
    args: string[],
    env: NodeJS.ProcessEnv = {},
  ) {
    const [file, ...prefix] = selfCommand(FERRY_BIN);
    this.proc = spawn(file!, [...prefix, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.proc.pid === undefined) throw new FerryError('FERRY_SPAWN', `could not start ferry ${args[0]}`);
    this.pid = this.proc.pid;
    const take = (b: Buffer) => this.take(b.toString('utf8'));
    this.proc.stdout!.on('data', take);
    this.proc.stderr!.on('data', take);
    this.exited = new Promise((resolve) => {
      this.proc.once('error', () => {});
      this.proc.once('close', (code, signal) => {
        if (this.partial) this.push(this.partial);
        this.partial = '';
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get exitStatus(): ChildExit | undefined {
    return this.exit;
  }

  /** The last `n` lines it printed, with every secret replaced by ***. */
  tail(n: number, secrets: readonly string[]): string[] {
    return this.lines.slice(-n).map((l) => scrub(readable(l), secrets));
  }

  /** Resolves with the first line (already printed or to come) that matches `re`. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    for (const l of this.lines) {
      const m = l.match(re);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(onLine);
      };
      const onLine = (l: string) => {
        const m = l.match(re);
        if (m) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new FerryError('FERRY_DEMO_START', `ferry ${this.role} did not start within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.listeners.add(onLine);
      void this.exited.then((e) => {
        if (!this.listeners.has(onLine)) return;
        done();
        reject(new FerryError('FERRY_DEMO_START', `ferry ${this.role} exited (${describeExit(e)}) before it was ready`));
      });
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs: number): Promise<ChildExit> {
    if (this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private take(s: string): void {
    const parts = (this.partial + s).split('\n');
    this.partial = parts.pop() ?? '';
    for (const l of parts) this.push(l);
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEEP_LINES) this.lines.shift();
    for (const fn of [...this.listeners]) fn(line);
  }
}

export function describeExit(e: ChildExit): string {
  return e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
}

export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('***');
  return out;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A pino JSON line as `HH:MM:SS LEVEL message key=value …`; anything else as it is. */
export function readable(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const j = JSON.parse(line) as Record<string, unknown>;
    const { level, time, msg, pid: _pid, hostname: _h, name: _n, ...rest } = j;
    const when = typeof time === 'string' ? time.slice(11, 19) : typeof time === 'number' ? new Date(time).toISOString().slice(11, 19) : '';
    const fields = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${when} ${LEVELS[Number(level)] ?? String(level)} ${String(msg ?? '')}${fields ? `  ${fields}` : ''}`.trim();
  } catch {
    return line;
  }
}
