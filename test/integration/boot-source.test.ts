// The boot tests' source server boots as it is (issue 16, "What must be
// shown: it boots"): the small Debian 12 image of test/helpers/debian-image.sh
// (built once, cached) under qemu (TCG) with its disk on PIIX IDE and its own
// NIC (the MAC its persistent-net rule names eth0): the marker line on the
// serial console shows / on the IDE disk by the path its fstab names, with
// the UUID the image was made with, and an address from qemu's DHCP. This is
// what the migrated copies (boot-migrate-*.test.ts) are compared with.
// Measured 2026-12-05 (2 shared cores): the bios image builds in 130–189 s
// once per recipe (cached afterwards); this file takes 24–45 s with the image cached.
import { beforeAll, describe, expect, it } from 'vitest';
import { DEBIAN_IMAGE_TOOLS, debianImage, type DebianImage } from '../helpers/debian-image.js';
import { QEMU, bootAndWaitForMarker } from '../helpers/qemu.js';
import { QEMU_DHCP_ADDRESS } from '../helpers/boot-lab.js';
import { needs } from '../helpers/requirements.js';

const env = needs({ root: true, tools: [...DEBIAN_IMAGE_TOOLS, QEMU] });

describe.runIf(env.ok)('the legacy BIOS source server', () => {
  let image: DebianImage;

  beforeAll(async () => {
    image = await debianImage('bios');
  }, 15 * 60_000);

  it('boots on its IDE disk and comes up on its own NIC', async () => {
    const boot = await bootAndWaitForMarker({ image: image.path, disk: 'ide', mac: image.sourceMac });
    expect(boot.marker.root).toBe('/dev/sda3');
    expect(boot.marker.uuid).toBe(image.rootUuid);
    expect(boot.marker.ipv4).toHaveLength(1);
    expect(boot.marker.ipv4[0]).toMatch(QEMU_DHCP_ADDRESS);
  }, 6 * 60_000);
});
