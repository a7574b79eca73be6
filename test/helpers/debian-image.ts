// The boot tests' small Debian 12 server image (issue 16): built by the
// recipe test/helpers/debian-image.sh once, cached under
// $FERRY_TEST_IMAGE_CACHE (default /var/cache/ferry-test) in a file named
// after the sha256 of the recipe, and reused by every later run until the
// recipe changes. Concurrent builders (two test files, two helpers) are
// serialised by a lock file in the cache directory: the second waits and
// then finds the image made. Images of older recipes are removed. This file owns the cache and its lock; it never
// changes a cached image (callers boot it with qemu's -snapshot or attach it
// read-only) and never touches anything outside the cache directory.
//
// Build time measured 2026-12-05 (2 shared cores, deb.debian.org through
// the machine's apt sources): see the recipe's header and `buildSeconds`.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEBIAN_IMAGE_RECIPE = fileURLToPath(new URL('./debian-image.sh', import.meta.url));

/** Host tools the recipe runs (for `needs({ tools })`). */
export const DEBIAN_IMAGE_TOOLS = ['debootstrap', 'flock', 'sfdisk', 'losetup', 'partx', 'mkfs.ext4', 'mkfs.xfs', 'mkswap', 'mkfs.vfat', 'mmd', 'mcopy', 'blkid', 'chroot'];

export type ImageVariant = 'bios' | 'uefi';

export interface DebianImage {
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
  /** How long the build took, when it was built (not when reused). */
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
  return createHash('sha256').update(readFileSync(DEBIAN_IMAGE_RECIPE)).digest('hex').slice(0, 16);
}

/**
 * Returns the cached image of `variant`, building it first when the cache
 * has none for this recipe (about 3 minutes; the lock makes a concurrent
 * caller wait for it instead of building twice).
 */
export function debianImage(variant: ImageVariant): DebianImage {
  const dir = imageCacheDir();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `debian12-${variant}-${recipeHash()}.img`);
  if (!existsSync(path) || !existsSync(`${path}.json`)) {
    // bash reads a script as it runs: run a copy, so that editing the recipe cannot break a build under way.
    const copy = join(dir, `.recipe-${process.pid}.sh`);
    copyFileSync(DEBIAN_IMAGE_RECIPE, copy);
    try {
      // Under the lock the recipe runs only if the image is still missing: the first builder made it otherwise.
      const script = `[ -e "$2" ] && [ -e "$2.json" ] || bash "$1" "$3" "$2" "$4"`;
      execFileSync('flock', [join(dir, '.lock'), 'bash', '-c', script, 'build', copy, path, variant, aptMirror()], {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 15 * 60_000,
        env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
      });
    } finally {
      rmSync(copy, { force: true });
    }
    // Images of this variant made by older recipes are never used again.
    for (const f of readdirSync(dir)) {
      if (f.startsWith(`debian12-${variant}-`) && !f.startsWith(basename(path))) rmSync(join(dir, f), { force: true });
    }
  }
  const facts = JSON.parse(readFileSync(`${path}.json`, 'utf8')) as Omit<DebianImage, 'path'>;
  return { ...facts, path };
}
