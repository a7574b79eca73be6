// Real loop devices for integration tests: an image file in a temp dir,
// attached with partition scanning, and torn down (unmounted, LVM metadata
// wiped, detached) afterwards even when a test fails half way.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1', LC_ALL: 'C' },
    timeout: 120_000,
  });
}

export class LoopDisk {
  readonly image: string;
  readonly device: string;
  private readonly dir: string;
  private readonly mounts: string[] = [];

  private constructor(dir: string, image: string, device: string) {
    this.dir = dir;
    this.image = image;
    this.device = device;
  }

  static create(sizeBytes: number, prefix = 'ferry-loop-'): LoopDisk {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const image = join(dir, 'disk.img');
    sh('truncate', ['-s', String(sizeBytes), image]);
    const device = sh('losetup', ['-f', '--show', '-P', image]).trim();
    return new LoopDisk(dir, image, device);
  }

  /** Partition N's device node (/dev/loop3p1); waits for devtmpfs to create it. */
  part(n: number): string {
    return `${this.device}p${n}`;
  }

  /**
   * Ask the kernel to re-read the partition table (no udev here). On this
   * kernel `blockdev --rereadpt` succeeds without creating the partition
   * nodes, so `partx -u` always follows it; then wait for devtmpfs.
   */
  rescan(): void {
    sh('losetup', ['-c', this.device]);
    try {
      sh('blockdev', ['--rereadpt', this.device]);
    } catch {
      /* busy or unsupported: partx below does the work */
    }
    try {
      sh('partx', ['-u', this.device]);
    } catch {
      sh('partx', ['-a', this.device]);
    }
    for (let i = 0; i < 50; i++) {
      if (existsSync(`${this.device}p1`)) return;
      execFileSync('sleep', ['0.05']);
    }
    throw new Error(`${this.device}: no partition nodes appeared after a rescan`);
  }

  mount(dev: string, options: string[] = []): string {
    const mnt = mkdtempSync(join(this.dir, 'mnt-'));
    sh('mount', [...(options.length ? ['-o', options.join(',')] : []), dev, mnt]);
    this.mounts.push(mnt);
    return mnt;
  }

  destroy(): void {
    for (const m of this.mounts.reverse()) {
      try {
        sh('umount', ['-l', m]);
      } catch {
        /* already gone */
      }
    }
    try {
      sh('losetup', ['-d', this.device]);
    } catch {
      /* already detached */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
