// The generated grub.cfg checked (pure): in a chroot without udev there is no
// /dev/disk/by-uuid, so grub-mkconfig's 10_linux names the root by the
// device it saw ('root=/dev/loop1p3'), which the target will never have and
// which drops it into the initramfs shell. Such root=/resume= words in
// `linux` lines are rewritten to UUID= of the target's root and swap; then no
// line may name a receiver-side device at all (the loop devices, the
// receiver's disks and their partitions), else configure fails.
// Must not touch: anything but the text it is given.

import { FerryError } from '../../errors/ferry-error.js';

export interface GrubCfgTargets {
  rootUuid: string;
  swapUuid?: string;
  /** The receiver's own device paths of the target disks and partitions ('/dev/sdb', '/dev/sdb2', '/dev/loop3p1'). */
  receiverDevices: string[];
}

const LOOP = /\/dev\/loop\d+(p\d+)?\b/;

function isReceiverDevice(dev: string, t: GrubCfgTargets): boolean {
  return LOOP.test(dev) || t.receiverDevices.includes(dev);
}

/** root=/resume= words of a kernel command line that name a receiver device, as UUID= of the target's root and swap; `count` says how many. */
export function fixReceiverRootResume(cmdline: string, t: GrubCfgTargets): { cmdline: string; count: number } {
  let count = 0;
  const out = cmdline.replace(/(^|\s)(root|resume)=(\/dev\/\S+)/g, (w, sp: string, key: string, dev: string) => {
    if (!isReceiverDevice(dev, t)) return w;
    const uuid = key === 'root' ? t.rootUuid : t.swapUuid;
    if (!uuid) return w;
    count++;
    return `${sp}${key}=UUID=${uuid}`;
  });
  return { cmdline: out, count };
}

export function fixGrubCfg(text: string, t: GrubCfgTargets, file: string): { text: string; changes: string[] } {
  let count = 0;
  const out = text.replace(/^(\s*linux(?:efi|16)?\s+\S+)(.*)$/gm, (_line, head: string, rest: string) => {
    const fixed = fixReceiverRootResume(rest, t);
    count += fixed.count;
    return head + fixed.cmdline;
  });
  const changes = count > 0 ? [`${file}: ${count} root=/resume= device path${count > 1 ? 's' : ''} of the receiver rewritten to UUID= (no udev in the chroot)`] : [];
  assertNoReceiverDevice(out, t, file);
  return { text: out, changes };
}

/** Fails (FERRY_CONFIGURE_FAILED) when `text` still names a receiver-side device. */
export function assertNoReceiverDevice(text: string, t: GrubCfgTargets, file: string): void {
  text.split('\n').forEach((line, i) => {
    const words = line.match(/\/dev\/[A-Za-z0-9_/.-]+/g) ?? [];
    const bad = words.find((w) => isReceiverDevice(w, t));
    if (bad) throw new FerryError('FERRY_CONFIGURE_FAILED', `${file}:${i + 1} names ${bad}, a device of the receiver that the migrated server will not have: ${line.trim().slice(0, 200)}`);
  });
}
