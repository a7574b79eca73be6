// `ferry demo --system` as an operator runs it (issue 16: "shows the whole
// story on one machine … then cleans up"): the built CLI as a real child
// process, BIOS source, file level. It reuses the small Debian 12 server the
// boot tests build (src/demo/server-image.ts: one cache, $FERRY_TEST_IMAGE_CACHE,
// default /var/cache/ferry-test, keyed by the recipe's hash), migrates it,
// boots the copy under qemu and prints the marker: / on the virtio disk and
// an IPv4 address from qemu's DHCP. The child runs with TMPDIR set to a
// directory of this test's, so everything it makes (its data directory,
// qemu's work dir, the receiver's mounts and the target's loop device) is
// findable by path: after it exits, no loop device, mount, process or temp
// file of its own is left. A refused option leaves nothing behind either.
// Measured 2026-12-05 (2 shared cores, image cached): 110 s for the boot run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.js';
import { DEBIAN_IMAGE_TOOLS, debianImage, type DebianImage } from '../helpers/debian-image.js';
import { QEMU } from '../helpers/qemu.js';
import { QEMU_DHCP_ADDRESS } from '../helpers/boot-lab.js';
import { needs } from '../helpers/requirements.js';
import { imageCacheDir } from '../../src/demo/server-image.js';

const env = needs({ root: true, tools: [...DEBIAN_IMAGE_TOOLS, QEMU] });

/** Loop devices whose backing file is under `dir` or is `image` (losetup -a: "/dev/loopN: []: (FILE)"). */
function loopsOf(dir: string, image: string): string[] {
  const out = execFileSync('losetup', ['-a'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(`(${dir}/`) || l.includes(`(${image})`));
}

/** Mount points under `dir` (field 5 of /proc/self/mountinfo; spaces are octal-escaped there, and the test's paths have none). */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Processes whose command line names `dir` (the receiver's --data, qemu's target image). */
function processesNaming(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue; // gone meanwhile
    }
    if (cmd.includes(dir)) found.push(`${pid} ${cmd}`);
  }
  return found;
}

describe.runIf(env.ok)('ferry demo --system', () => {
  let image: DebianImage;
  let dir: string;
  let tmp: string;

  beforeAll(async () => {
    // The boot tests' cached image (built here only when no boot test has built it for this recipe yet).
    image = await debianImage('bios');
    dir = mkdtempSync(join(tmpdir(), 'ferry-demo-system-test-'));
    tmp = join(dir, 'tmp');
    mkdirSync(tmp);
  }, 15 * 60_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('migrates the cached BIOS server at file level, boots it from its virtio disk with an IPv4 address, and leaves nothing behind', async () => {
    const cacheBefore = readdirSync(imageCacheDir()).sort();
    expect(loopsOf(dir, image.path)).toEqual([]);

    const r = await runFerry(['demo', '--system', '--json'], {
      env: { TMPDIR: tmp, FERRY_TEST_IMAGE_CACHE: imageCacheDir() },
      timeoutMs: 15 * 60_000,
    });
    const story = `${r.stderr}\n${r.stdout}`;
    expect(r.code, story).toBe(0);

    // The marker, as the operator reads it (progress goes to stderr with --json) …
    const line = /^4\/4 it booted in .*: \/ is (\/dev\/vd[a-z]\d+) \(UUID ([0-9a-f-]+)\), IPv4 (\S+)$/m.exec(r.stderr);
    expect(line, r.stderr).not.toBeNull();
    expect(line![1]).toBe('/dev/vda3');
    expect(line![2]).toBe(image.rootUuid);
    expect(line![3]).toMatch(QEMU_DHCP_ADDRESS);
    expect(r.stderr).toMatch(/^ferry demo --system OK: the migrated server booted from \/dev\/vda3 with IPv4 10\.0\.2\.\d+\/24$/m);
    expect(r.stderr).toContain('data directory removed');

    // … and in the JSON summary: the cached image was used, not a new one.
    const s = JSON.parse(r.stdout) as { ok: boolean; image: string; mode: string; variant: string; marker: { root: string; uuid: string; ipv4: string[] }; data_dir: string | null; error: unknown };
    expect(s).toMatchObject({ ok: true, image: image.path, mode: 'file', variant: 'bios', data_dir: null, error: null });
    expect(s.marker.root).toBe('/dev/vda3');
    expect(s.marker.ipv4).toHaveLength(1);
    expect(readdirSync(imageCacheDir()).sort()).toEqual(cacheBefore);

    // Cleaned up: its data directory and qemu's work dir (both in TMPDIR), the source's
    // read-only loop device and mounts, the receiver's target loop device and mounts, its children.
    expect(readdirSync(tmp)).toEqual([]);
    expect(loopsOf(dir, image.path)).toEqual([]);
    expect(mountsUnder(dir)).toEqual([]);
    expect(processesNaming(dir)).toEqual([]);
  }, 20 * 60_000);

  it('refuses an unknown firmware with a usage error (exit 2) before it makes anything', async () => {
    const r = await runFerry(['demo', '--system', '--firmware', 'nonsense'], { env: { TMPDIR: tmp } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--firmware must be bios or uefi, not nonsense');
    expect(r.stdout).toBe('');
    expect(readdirSync(tmp)).toEqual([]);
    expect(loopsOf(dir, image.path)).toEqual([]);
    expect(mountsUnder(dir)).toEqual([]);
  });
});
