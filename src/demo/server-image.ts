// The small Debian 12 server that `ferry demo --system` and the boot tests
// (test/integration/boot-*.test.ts) migrate: built by the recipe
// debian-server.sh (next to this file; the build copies it into dist/demo/)
// once, cached under $FERRY_TEST_IMAGE_CACHE (default /var/cache/ferry-test)
// in a file named after the sha256 of the recipe, and reused until the recipe
// changes. Concurrent builders (two test files, a test and a demo) are
// serialised by a lock file in the cache directory: the second waits, then
// finds the image made. Owns the cache directory and its lock; never changes
// a cached image (callers boot it with qemu's snapshot=on or attach it
// read-only); touches nothing outside the cache directory (the recipe's own
// loop device and temp dir are its business, cleaned by its trap).
//
// Measured 2026-12-05 on this VM kind (2 shared cores, deb.debian.org):
// the bios image builds in 130–189 s (debootstrap most of it), the uefi one
// in 183 s; each allocates about 680 MB of its 3 GiB. `buildSeconds` in the
// image's .json says what a build took.

import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec } from '../platform/exec.js';

export const SERVER_RECIPE = fileURLToPath(new URL('./debian-server.sh', import.meta.url));

/** Host tools the recipe runs (besides bash and coreutils). */
export const SERVER_IMAGE_TOOLS = ['debootstrap', 'flock', 'sfdisk', 'losetup', 'partx', 'mkfs.ext4', 'mkfs.xfs', 'mkswap', 'mkfs.vfat', 'mmd', 'mcopy', 'blkid', 'chroot'];

export type ImageVariant = 'bios' | 'uefi';

export interface ServerImage {
  variant: ImageVariant;
  /** The cached image: never write to it. */
  path: string;
  kernel: string;
  /** The MAC the source's persistent-net rule binds eth0 to. */
  sourceMac: string;
  rootUuid: string;
  bootUuid: string;
  swapUuid: string;
  /** '' for the bios variant. */
  espUuid: string;
  sizeBytes: number;
  /** How long the build took when it was built. */
  buildSeconds: number;
}

export function imageCacheDir(): string {
  return process.env.FERRY_TEST_IMAGE_CACHE ?? '/var/cache/ferry-test';
}

/** The Debian mirror this machine's apt sources name (deb822 .sources first, then sources.list). */
export function aptMirror(): string {
  const dir = '/etc/apt/sources.list.d';
  const texts: string[] = [];
  if (existsSync(dir)) for (const f of readdirSync(dir).sort()) if (f.endsWith('.sources')) texts.push(readFileSync(join(dir, f), 'utf8'));
  for (const t of texts) {
    for (const stanza of t.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1] ?? '';
      if (uri && /\bbookworm\b/.test(suites) && !/security/.test(uri)) return uri;
    }
  }
  if (existsSync('/etc/apt/sources.list')) {
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(readFileSync('/etc/apt/sources.list', 'utf8'));
    if (m?.[1]) return m[1];
  }
  return 'http://deb.debian.org/debian';
}

/** The content hash of the recipe: a changed recipe is a new image. */
export function recipeHash(): string {
  return createHash('sha256').update(readFileSync(SERVER_RECIPE)).digest('hex').slice(0, 16);
}

/**
 * Returns the cached image of `variant`, building it first when the cache
 * has none for this recipe (about 3 minutes; the lock makes a concurrent
 * caller wait for it instead of building twice).
 */
export async function serverImage(variant: ImageVariant): Promise<ServerImage> {
  const dir = imageCacheDir();
  await mkdir(dir, { recursive: true });
  const path = join(dir, `debian12-${variant}-${recipeHash()}.img`);
  if (!existsSync(path) || !existsSync(`${path}.json`)) {
    // bash reads a script as it runs: run a copy, so that editing the recipe cannot break a build under way.
    const copy = join(dir, `.recipe-${process.pid}.sh`);
    await copyFile(SERVER_RECIPE, copy);
    try {
      // Under the lock the recipe runs only if the image is still missing: the first builder made it otherwise.
      const script = `[ -e "$2" ] && [ -e "$2.json" ] || bash "$1" "$3" "$2" "$4"`;
      await exec('flock', [join(dir, '.lock'), 'bash', '-c', script, 'build', copy, path, variant, aptMirror()], {
        timeoutMs: 20 * 60_000,
        env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
      });
    } finally {
      await rm(copy, { force: true });
    }
    // Images of this variant made by older recipes are never used again.
    for (const f of await readdir(dir)) {
      if (f.startsWith(`debian12-${variant}-`) && !f.startsWith(basename(path))) await rm(join(dir, f), { force: true });
    }
  }
  const facts = JSON.parse(await readFile(`${path}.json`, 'utf8')) as Omit<ServerImage, 'path'>;
  return { ...facts, path };
}
