// Running the migrated system's own tools inside its tree (the staging root),
// never on the receiver's system: /dev, /proc and /sys bound into it (and
// efivarfs where the receiver has one, for a UEFI target), /run a fresh
// tmpfs; each command runs as `chroot ROOT PROGRAM ARGS` with a clean
// environment (the target's PATH, LC_ALL=C, no variable of the receiver's).
// Whatever happens, withChroot unmounts everything it mounted (last first,
// lazily when busy) and checks that nothing of its own is left mounted.
// Must not touch: mounts it did not make (the target tree's own mounts are
// the caller's).

import { existsSync } from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import { exec, type ExecResult } from '../../platform/exec.js';
import type { Logger } from '../../platform/log.js';
import { unmountOrDetach } from '../../platform/unmount.js';
import { mountsUnder } from '../system/mounts.js';

const EFIVARS = '/sys/firmware/efi/efivars';

export interface ChrootOptions {
  /** Bind the receiver's efivarfs (only where it has one: a UEFI intermediate instance). */
  efivars?: boolean;
  /** Extra environment for every command (GRUB_DISABLE_OS_PROBER …). */
  env?: Record<string, string>;
}

export interface ChrootRunOptions {
  timeoutMs?: number;
  env?: Record<string, string>;
  okCodes?: number[];
}

export class Chroot {
  private readonly mounted: string[] = [];
  /** Every mount point this chroot made, for the check after exit(). */
  readonly made: string[] = [];

  constructor(
    readonly root: string,
    private readonly o: ChrootOptions,
    private readonly log: Logger,
  ) {}

  /** The path of `p` (absolute in the target) on the receiver. */
  path(p: string): string {
    return join(this.root, p);
  }

  async mount(args: string[], dir: string): Promise<void> {
    const at = this.path(dir);
    await mkdir(at, { recursive: true });
    await exec('mount', [...args, at], { timeoutMs: 60_000 });
    this.mounted.push(at);
    this.made.push(at);
  }

  async enter(): Promise<void> {
    await this.mount(['--bind', '/dev'], '/dev');
    await this.mount(['-t', 'proc', 'proc'], '/proc');
    await this.mount(['--bind', '/sys'], '/sys');
    if (this.o.efivars && existsSync(EFIVARS)) await this.mount(['-t', 'efivarfs', 'efivarfs'], EFIVARS);
    await this.mount(['-t', 'tmpfs', '-o', 'mode=0755,size=64m', 'tmpfs'], '/run');
  }

  /** Runs PROGRAM inside the target; its failure is FERRY_CONFIGURE_FAILED naming the step. */
  async run(program: string, args: string[], o: ChrootRunOptions = {}): Promise<ExecResult> {
    const env = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LC_ALL: 'C',
      LANG: 'C',
      HOME: '/root',
      DEBIAN_FRONTEND: 'noninteractive',
      ...this.o.env,
      ...o.env,
    };
    try {
      return await exec('chroot', [this.root, program, ...args], { env, timeoutMs: o.timeoutMs ?? 600_000, ...(o.okCodes ? { okCodes: o.okCodes } : {}) });
    } catch (e) {
      throw new FerryError('FERRY_CONFIGURE_FAILED', `in the migrated system: ${errorMessage(e).replace(`chroot ${this.root} `, '')}`, { cause: e });
    }
  }

  /** Unmounts what enter() and mount() made, last first; a busy one lazily. */
  async exit(): Promise<void> {
    while (this.mounted.length > 0) {
      const dir = this.mounted.pop()!;
      await unmountOrDetach(dir, { log: this.log, what: 'unmount in the target chroot failed: detaching lazily' }).catch(() => undefined);
    }
  }
}

/**
 * Runs `fn` with the target's chroot entered; exits it whatever happens and
 * then fails (FERRY_CONFIGURE_FAILED) if a mount of its own is still there.
 */
export async function withChroot<T>(root: string, o: ChrootOptions, log: Logger, fn: (c: Chroot) => Promise<T>): Promise<T> {
  const c = new Chroot(await realpath(root), o, log);
  let result: T;
  try {
    await c.enter();
    result = await fn(c);
  } finally {
    await c.exit();
    const left = (await mountsUnder(c.root)).filter((m) => c.made.some((d) => m === d || m.startsWith(`${d}/`)));
    if (left.length > 0) throw new FerryError('FERRY_CONFIGURE_FAILED', `the target chroot could not be left: still mounted: ${left.join(', ')}`);
  }
  return result;
}
