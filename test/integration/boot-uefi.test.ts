// A migrated UEFI server boots (issue 16): the UEFI/GPT variant of the boot
// tests' source (an ESP, vfat, with GRUB at the removable path; /boot ext4,
// / xfs, swap; fstab and grub naming /dev/sda*; eth0 bound to its MAC) boots
// with OVMF on its IDE disk; migrated at file level (the ESP block-copied:
// this kernel cannot mount vfat) onto a blank larger disk and configured
// (grub-efi installed into the target's ESP, also at the removable path, the
// new firmware having no boot entry), the TARGET boots with OVMF on a virtio
// disk and a virtio NIC with another MAC, / on the virtio disk.
// Measured 2026-12-05: the uefi image builds in 183 s once per recipe; with
// it cached and the configure op merged, this file takes 117 s (source boot
// 48 s, migrate + configure + boot 69 s).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEBIAN_IMAGE_TOOLS, debianImage, type DebianImage } from '../helpers/debian-image.js';
import { OVMF_CODE, QEMU, bootAndWaitForMarker } from '../helpers/qemu.js';
import { QEMU_DHCP_ADDRESS, TARGET_MAC, attachSource, migrateSystem } from '../helpers/boot-lab.js';
import { needs } from '../helpers/requirements.js';
import type { ImageSource } from '../../src/demo/image-source.js';

const GiB = 1024 ** 3;
const env = needs({ root: true, tools: [...DEBIAN_IMAGE_TOOLS, QEMU], files: [OVMF_CODE] });

describe.runIf(env.ok)('a UEFI server with an ESP, migrated at file level onto a virtio disk', () => {
  let image: DebianImage;
  let dir: string;
  let src: ImageSource | undefined;

  beforeAll(async () => {
    image = await debianImage('uefi');
    dir = mkdtempSync(join(tmpdir(), 'ferry-boot-uefi-'));
  }, 15 * 60_000);

  afterAll(async () => {
    await src?.detach();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('boots with OVMF as the source, on its IDE disk and its own NIC', async () => {
    const boot = await bootAndWaitForMarker({ image: image.path, disk: 'ide', firmware: 'uefi', mac: image.sourceMac });
    expect(boot.marker.root).toBe('/dev/sda3');
    expect(boot.marker.uuid).toBe(image.rootUuid);
    expect(boot.marker.ipv4[0]).toMatch(QEMU_DHCP_ADDRESS);
  }, 6 * 60_000);

  it('boots with OVMF once migrated, from its virtio disk and on its new NIC', async () => {
    src = await attachSource(image, dir);
    const m = await migrateSystem(src, dir, 'file', 4 * GiB);
    await src.detach();
    expect(m.migrate.code, `${m.migrate.stderr}\n${m.receiverLog.slice(-3000)}`).toBe(0);

    const boot = await bootAndWaitForMarker({ image: m.target, disk: 'virtio', firmware: 'uefi', mac: TARGET_MAC });
    expect(boot.marker.root).toBe('/dev/vda3');
    expect(boot.marker.uuid).toBe(image.rootUuid);
    expect(boot.marker.ipv4).toHaveLength(1);
    expect(boot.marker.ipv4[0]).toMatch(QEMU_DHCP_ADDRESS);
  }, 20 * 60_000);
});
