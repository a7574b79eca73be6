// The boot tests' migration (issue 16): the cached Debian image attached
// read-only as a source (src/demo/image-source.ts: / and /boot mounted
// read-only at a source root, the ESP left to the agent's block copy), then
// `ferry receive --disk` + `ferry migrate --system` as real child processes
// of dist/cli/bin.js onto a blank sparse image. Owns the receiver it starts
// and the target image under the test's dir. The cached image is never
// written: a test that changes its source between passes attaches a copy
// (attachSourceCopy). Run under the shared lock.

import { join } from 'node:path';
import { exec } from '../../src/platform/exec.js';
import { attachImageSource, type ImageSource } from '../../src/demo/image-source.js';
import { runFerry, type RunResult } from './cli.js';
import { startReceiver } from './block.js';
import { blankImage } from './system-lab.js';
import type { DebianImage } from './debian-image.js';

/** The target's NIC: another MAC than the source's, as in a new cloud. */
export { TARGET_MAC } from '../../src/demo/system-demo.js';
export const QEMU_DHCP_ADDRESS = /^10\.0\.2\.\d+\/24$/;

/** The cached image attached read-only and mounted at DIR/source-root (src/demo/image-source.ts). */
export function attachSource(image: DebianImage, dir: string): Promise<ImageSource> {
  return attachImageSource(image.path, join(dir, 'source-root'));
}

/**
 * A copy of the cached image (DIR/source.img: a reflink where the file
 * system can, else a sparse copy) attached READ-WRITE at DIR/source-root, so
 * that the test can change the source between passes.
 */
export async function attachSourceCopy(image: DebianImage, dir: string): Promise<ImageSource> {
  const copy = join(dir, 'source.img');
  await exec('cp', ['--reflink=auto', '--sparse=always', image.path, copy], { timeoutMs: 10 * 60_000 });
  return attachImageSource(copy, join(dir, 'source-root'), { writable: true });
}

export interface Migrated {
  target: string;
  migrate: RunResult;
  receiverLog: string;
}

/**
 * Migrates the attached source with `ferry migrate --system` onto a blank
 * sparse image of `targetBytes` given to a receiver as `--disk disk0=…`; the
 * receiver is stopped (its mounts and loop devices gone) before this returns.
 */
export async function migrateSystem(src: ImageSource, dir: string, mode: 'file' | 'block', targetBytes: number): Promise<Migrated> {
  const target = blankImage(join(dir, 'target'), 'disk0', targetBytes);
  const recv = await startReceiver(join(dir, 'recv'), [], ['--disk', `disk0=${target}`]);
  try {
    const { port, token, fingerprint } = recv.info;
    const migrate = await runFerry(
      ['migrate', '--to', `127.0.0.1:${port}`, '--token', token, '--fingerprint', fingerprint, '--system', '--mode', mode, '--source-root', src.root, '--source-disk', src.device, '--json'],
      { timeoutMs: 15 * 60_000 },
    );
    return { target, migrate, receiverLog: recv.stderr() };
  } finally {
    await recv.stop();
  }
}
