// A migrated server boots (issue 16), block level: the legacy BIOS source of
// boot-source.test.ts is migrated with `ferry migrate --system --mode block`
// onto a blank LARGER disk: the whole disk is copied, its last partition (/,
// xfs) grown with its file system, and the copy configured for its new
// hardware. The TARGET boots under qemu on a virtio disk and a virtio NIC
// with another MAC; its marker shows / on the virtio disk with the source's
// UUID, larger than on the source, and an address from qemu's DHCP.
// Measured 2026-12-05 with the configure op merged: 65–81 s (3 GiB disk copied,
// grown, configured, booted), image cached.
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEBIAN_IMAGE_TOOLS, debianImage, type DebianImage } from '../helpers/debian-image.js';
import { QEMU, bootAndWaitForMarker } from '../helpers/qemu.js';
import { QEMU_DHCP_ADDRESS, TARGET_MAC, attachSource, migrateSystem } from '../helpers/boot-lab.js';
import { needs } from '../helpers/requirements.js';
import type { ImageSource } from '../../src/demo/image-source.js';

const GiB = 1024 ** 3;
const env = needs({ root: true, tools: [...DEBIAN_IMAGE_TOOLS, QEMU] });

describe.runIf(env.ok)('a legacy BIOS server migrated at block level onto a larger virtio disk', () => {
  let image: DebianImage;
  let dir: string;
  let src: ImageSource | undefined;

  beforeAll(async () => {
    image = await debianImage('bios');
    dir = mkdtempSync(join(tmpdir(), 'ferry-boot-block-'));
  }, 15 * 60_000);

  afterAll(async () => {
    await src?.detach();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('boots from its grown virtio disk and comes up on its new NIC', async () => {
    src = await attachSource(image, dir);
    // What findmnt says of / in the guest: the file system's blocks times its block size.
    const st = statfsSync(src.root);
    const sourceRootBytes = st.blocks * st.bsize;
    const m = await migrateSystem(src, dir, 'block', 4 * GiB);
    await src.detach();
    expect(m.migrate.code, `${m.migrate.stderr}\n${m.receiverLog.slice(-3000)}`).toBe(0);

    const boot = await bootAndWaitForMarker({ image: m.target, disk: 'virtio', mac: TARGET_MAC });
    expect(boot.marker.root).toBe('/dev/vda3');
    expect(boot.marker.uuid).toBe(image.rootUuid);
    expect(boot.marker.rootBytes).toBeGreaterThan(sourceRootBytes + GiB / 2);
    expect(boot.marker.ipv4).toHaveLength(1);
    expect(boot.marker.ipv4[0]).toMatch(QEMU_DHCP_ADDRESS);
  }, 20 * 60_000);
});
