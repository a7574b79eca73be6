// `ferry demo --system`: a whole server migrated and booted, on this machine.
// Builds (or reuses from its cache) the small Debian 12 server image
// (server-image.ts), attaches it read-only as the source (image-source.ts),
// starts `ferry receive --disk disk0=TARGET` on a blank sparse image and runs
// `ferry migrate --system` (file or block level) as child processes of this
// same ferry, then boots the TARGET under qemu (qemu-boot.ts) on a virtio
// disk and a virtio NIC with another MAC than the source's and prints the
// marker line its system writes once its network is up: where / is, its
// UUID, its IPv4 address. Cleans up everything it made (children, mounts,
// loop device, the target) unless --keep.
//
// Owns only its data directory; the image cache is server-image.ts's. Never
// touches the receiver's or agent's internals: their CLIs only.

import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError, errorMessage } from '../errors/ferry-error.js';
import { FerryChild, describeExit, scrub } from './child.js';
import { attachImageSource, type ImageSource } from './image-source.js';
import type { DemoIO } from './lab.js';
import { formatDuration } from './progress-line.js';
import { bootAndWaitForMarker, type BootMarker } from './qemu-boot.js';
import { imageCacheDir, serverImage, type ImageVariant } from './server-image.js';

/** The target's NIC: another MAC than the source's, as in a new cloud. */
export const TARGET_MAC = '52:54:00:fe:00:02';
const GiB = 1024 ** 3;

export interface SystemDemoOptions {
  variant: ImageVariant;
  mode: 'file' | 'block';
  /** Keep the data directory (target image, logs). */
  keep?: boolean;
}

export interface SystemDemoSummary {
  ok: boolean;
  variant: ImageVariant;
  mode: 'file' | 'block';
  image: string;
  target_bytes: number;
  marker: BootMarker | null;
  seconds: { image: number; migrate: number; boot: number };
  data_dir: string | null;
  error: { code: string; message: string } | null;
}

export async function runSystemDemo(opts: SystemDemoOptions, io: DemoIO, signal: AbortSignal): Promise<SystemDemoSummary> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new FerryError('FERRY_DEMO', 'ferry demo --system needs root: it attaches loop devices, mounts file systems and partitions a disk image');
  }
  const dir = await mkdtemp(join(tmpdir(), 'ferry-demo-system-'));
  const seconds = { image: 0, migrate: 0, boot: 0 };
  // A larger disk: file level fits the source's used space, block level grows the last partition (/).
  const targetBytes = 4 * GiB;
  const summary: SystemDemoSummary = { ok: false, variant: opts.variant, mode: opts.mode, image: '', target_bytes: targetBytes, marker: null, seconds, data_dir: opts.keep ? dir : null, error: null };
  let source: ImageSource | undefined;
  let recv: FerryChild | undefined;
  const secrets: string[] = [];
  const check = () => {
    if (signal.aborted) throw new FerryError('FERRY_DEMO_INTERRUPTED', 'interrupted');
  };
  try {
    let t = Date.now();
    io.say(`1/4 the source: a small Debian 12 server (${opts.variant}), built once with debootstrap and cached in ${imageCacheDir()} (the first build takes about 3 minutes)`);
    const image = await serverImage(opts.variant);
    summary.image = image.path;
    seconds.image = (Date.now() - t) / 1000;
    io.say(`    ${image.path}: kernel ${image.kernel}, / xfs ${image.rootUuid}, fstab and grub naming /dev/sda*, eth0 bound to ${image.sourceMac}`);
    check();

    t = Date.now();
    source = await attachImageSource(image.path, join(dir, 'source-root'));
    const target = join(dir, 'target-disk0.img');
    await writeFile(target, '');
    await truncate(target, targetBytes);
    io.say(`2/4 migrating it: ${source.device} (read-only, mounted at ${source.root}) -> blank ${targetBytes / GiB} GiB disk ${target}, ${opts.mode} level`);
    recv = new FerryChild('receive', ['receive', '--listen', '127.0.0.1:0', '--data', join(dir, 'receiver'), '--disk', `disk0=${target}`]);
    const rLine = await recv.waitForLine(/listening on (\S+):(\d+) fingerprint=(\S+) token=(\S+)/, 60_000);
    secrets.push(rLine[4]!);
    const migrate = new FerryChild('migrate', [
      'migrate', '--to', `127.0.0.1:${rLine[2]}`, '--token', rLine[4]!, '--fingerprint', rLine[3]!,
      '--system', '--mode', opts.mode, '--source-root', source.root, '--source-disk', source.device, '--migration-id', 'demo-system',
    ]);
    const onAbort = () => void migrate.stop(5000);
    signal.addEventListener('abort', onAbort);
    const exit = await migrate.exited.finally(() => signal.removeEventListener('abort', onAbort));
    check();
    for (const l of migrate.tail(12, secrets)) io.say(`    ${l}`);
    if (exit.code !== 0) throw new FerryError('FERRY_DEMO_CHILD', `ferry migrate --system failed (${describeExit(exit)}):\n${recv.tail(20, secrets).join('\n')}`);
    await recv.stop(10_000);
    recv = undefined;
    await source.detach();
    source = undefined;
    seconds.migrate = (Date.now() - t) / 1000;
    io.say(`    migrated and configured in ${formatDuration(seconds.migrate)}`);

    t = Date.now();
    io.say(`3/4 booting the migrated server under qemu (TCG, about a minute): virtio disk, virtio NIC ${TARGET_MAC}${opts.variant === 'uefi' ? ', OVMF' : ''}`);
    const boot = await bootAndWaitForMarker({ image: target, disk: 'virtio', firmware: opts.variant, mac: TARGET_MAC, logDir: dir });
    seconds.boot = (Date.now() - t) / 1000;
    summary.marker = boot.marker;
    io.say(`4/4 it booted in ${formatDuration(seconds.boot)}: / is ${boot.marker.root} (UUID ${boot.marker.uuid}), IPv4 ${boot.marker.ipv4.join(', ') || 'none'}`);
    summary.ok = boot.marker.ipv4.length > 0 && boot.marker.root.startsWith('/dev/vd');
    if (!summary.ok) summary.error = { code: 'FERRY_DEMO_VERIFY', message: 'the migrated server booted but not from its virtio disk, or without an IPv4 address' };
  } catch (err) {
    summary.error = { code: err instanceof FerryError ? err.code : 'FERRY_DEMO', message: scrub(errorMessage(err), secrets) };
    summary.data_dir = dir; // kept for diagnosis: the console log and the receiver's data are there
  } finally {
    await recv?.stop(10_000);
    await source?.detach();
    if (summary.data_dir === null) await rm(dir, { recursive: true, force: true });
  }
  return summary;
}
