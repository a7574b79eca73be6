// A migrated server boots (issue 16), file level: the legacy BIOS source of
// boot-source.test.ts (IDE disk, fstab and grub naming /dev/sda*, eth0 bound
// to its MAC) is migrated with `ferry receive --disk` + `ferry migrate
// --system --mode file` onto a blank, SMALLER disk (its root shrunk toward
// the used space) and configured for its new hardware; the TARGET then boots
// under qemu on a virtio disk and a virtio NIC with another MAC, and its
// marker shows / on the virtio disk with the source's UUID and an address
// from qemu's DHCP. Without the configure step the target stops at the
// initramfs (root=/dev/sda3 is not there) or comes up without its NIC.
// Measured 2026-12-05 with the configure op merged: 51–64 s (migrate + boot),
// image cached.
import { mkdtempSync, rmSync } from 'node:fs';
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

describe.runIf(env.ok)('a legacy BIOS server migrated at file level onto a smaller virtio disk', () => {
  let image: DebianImage;
  let dir: string;
  let src: ImageSource | undefined;

  beforeAll(async () => {
    image = await debianImage('bios');
    dir = mkdtempSync(join(tmpdir(), 'ferry-boot-file-'));
  }, 15 * 60_000);

  afterAll(async () => {
    await src?.detach();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('boots from its virtio disk and comes up on its new NIC', async () => {
    src = await attachSource(image, dir);
    const m = await migrateSystem(src, dir, 'file', 2.5 * GiB);
    await src.detach();
    expect(m.migrate.code, `${m.migrate.stderr}\n${m.receiverLog.slice(-3000)}`).toBe(0);

    const boot = await bootAndWaitForMarker({ image: m.target, disk: 'virtio', mac: TARGET_MAC });
    expect(boot.marker.root).toBe('/dev/vda3');
    expect(boot.marker.uuid).toBe(image.rootUuid);
    expect(boot.marker.ipv4).toHaveLength(1);
    expect(boot.marker.ipv4[0]).toMatch(QEMU_DHCP_ADDRESS);
  }, 20 * 60_000);
});
