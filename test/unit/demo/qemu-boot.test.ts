// How the boot tests and `ferry demo --system` run qemu (src/demo/qemu-boot.ts):
// the command line for a legacy source and a migrated target, and the
// serial-console lines that end a boot (the marker, or a dead end).
import { describe, expect, it } from 'vitest';
import { DEAD_END_RE, MARKER_RE, OVMF_CODE, qemuArgs } from '../../../src/demo/qemu-boot.js';

describe('qemu command line', () => {
  it('boots a legacy source from PIIX IDE without ever writing its image, on a user network that leaves nothing out', () => {
    const args = qemuArgs({ image: '/cache/src.img', disk: 'ide', mac: '52:54:00:fe:00:01' }).join(' ');
    expect(args).toContain('-accel tcg -m 1024 -smp 2');
    expect(args).toContain('-serial stdio');
    expect(args).toContain('-drive file=/cache/src.img,format=raw,if=ide,snapshot=on');
    expect(args).toContain('-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,mac=52:54:00:fe:00:01');
    expect(args).not.toContain('pflash');
  });

  it('boots a UEFI target from virtio with OVMF and a private copy of its variables', () => {
    const args = qemuArgs({ image: '/t/disk0.img', disk: 'virtio', firmware: 'uefi', mac: '52:54:00:fe:00:02' }, '/tmp/x/OVMF_VARS.fd').join(' ');
    expect(args).toContain('if=virtio');
    expect(args).toContain(`if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    expect(args).toContain('if=pflash,format=raw,unit=1,file=/tmp/x/OVMF_VARS.fd');
    expect(() => qemuArgs({ image: '/t/disk0.img', disk: 'virtio', firmware: 'uefi', mac: '52:54:00:fe:00:02' })).toThrow(/variable store/);
  });
});

describe('serial console', () => {
  it('reads the marker: root device, UUID, size of / and IPv4 addresses', () => {
    const m = MARKER_RE.exec('\r\n[  OK  ] x\r\nFERRY-BOOT-MARKER root=/dev/vda3 uuid=3b4c60a0-04a1-48ee-9785-a6064be55719 size=3750756352 ipv4=10.0.2.15/24\r\n');
    expect(m?.slice(1)).toEqual(['/dev/vda3', '3b4c60a0-04a1-48ee-9785-a6064be55719', '3750756352', '10.0.2.15/24']);
  });

  it('reads the marker only once its line is complete', () => {
    expect(MARKER_RE.exec('FERRY-BOOT-MARKER root=/dev/sda3 uuid=x size=1 ipv4=10.0')).toBeNull();
    expect(MARKER_RE.exec('FERRY-BOOT-MARKER root=/dev/sda3 uuid=x size=1 ipv4=none\n')?.[4]).toBe('none');
  });

  it('knows the lines after which the marker never comes', () => {
    expect(DEAD_END_RE.exec('ALERT!  /dev/sda3 does not exist.  Dropping to a shell!\r\n(initramfs) ')?.[0]).toBe('Dropping to a shell!');
    expect(DEAD_END_RE.test('No bootable device.  Retrying in 60 seconds.')).toBe(true);
    expect(DEAD_END_RE.test('Begin: Running /scripts/local-block ... done.')).toBe(false);
  });
});
