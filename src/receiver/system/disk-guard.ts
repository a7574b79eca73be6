// The check that keeps a system session off disks something else uses: before
// anything is written, a target disk (with every partition of it, and for an
// image file every loop device over it) must hold no mounted file system
// (/proc/self/mountinfo, by MAJ:MIN or device path), no active swap
// (/proc/swaps), no LVM physical volume of a volume group in use (pvs/lvs,
// asked only when one of its nodes carries an LVM label; or a device-mapper
// holder), and must not be the receiver's own root.
// Refusals are FERRY_DISK_IN_USE naming the device and what holds it.
// Reads only; must not touch the disks.

import { open, readFile, realpath } from 'node:fs/promises';
import { FerryError } from '../../errors/ferry-error.js';
import { exec } from '../../platform/exec.js';
import { parseMountinfo } from '../../platform/mountinfo.js';
import { holdersOf, majMinOf, partitionsOf } from './block-devices.js';
import { LVM_ENV } from './lvm.js';


interface Node {
  path: string;
  majMin: string;
}

async function nodesOf(devices: string[]): Promise<Node[]> {
  const paths = devices.flatMap((d) => [d, ...partitionsOf(d)]);
  return Promise.all(paths.map(async (path) => ({ path, majMin: await majMinOf(path) })));
}

/**
 * Whether the device at `path` carries an LVM2 physical volume label: LVM's
 * label header ("LABELONE", then the type "LVM2 001" at byte 24) at the
 * start of one of its first four 512-byte sectors, the only ones LVM writes
 * or scans (pvcreate refuses --labelsector 4 and up; LVM's sectors are 512
 * bytes on 4Kn disks too). Reads 2 KiB; a node that cannot be read, or
 * whose read takes longer than `timeoutMs` (a hung device), counts as
 * labelled: pvs then decides, with its own timeout.
 *
 * The read goes through the node's page cache (Node gives no aligned
 * buffers for O_DIRECT). A label written through another node of the same
 * disk (the whole disk, not the partition) after this node's first 4 KiB
 * were cached would be missed; such a PV with active LVs shows as a
 * device-mapper holder anyway (checked before), so what could be missed is
 * a PV of a volume group active elsewhere, on a disk some other tool wrote
 * behind the receiver's back.
 */
export async function hasLvmLabel(path: string, timeoutMs = 5_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
    timer.unref();
  });
  const read = (async () => {
    let fh;
    try {
      fh = await open(path, 'r');
      const buf = Buffer.alloc(2048);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      for (let at = 0; at + 32 <= bytesRead; at += 512) {
        if (buf.toString('latin1', at, at + 8) === 'LABELONE' && buf.toString('latin1', at + 24, at + 32) === 'LVM2 001') return true;
      }
      return false;
    } catch {
      return true;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  })();
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** `pvs`'s report of every physical volume and its volume group ('' when pvs is missing or fails). */
const readPvs = async (): Promise<string> => (await exec('pvs', ['--noheadings', '--separator', '|', '-o', 'pv_name,vg_name'], { env: LVM_ENV }).catch(() => undefined))?.stdout ?? '';

/**
 * What holds a disk (the first device of it found held, and by what), or
 * undefined when nothing does. `devices`: its block device and any loop
 * devices over its image file. `pvs`: the machine's PV report, when the
 * caller already has it (one report serves every disk of a layout).
 */
export async function diskHolder(devices: string[], pvs: () => Promise<string> = readPvs): Promise<{ device: string; holder: string } | undefined> {
  const nodes = await nodesOf(devices);
  const byMajMin = new Map(nodes.map((n) => [n.majMin, n.path]));
  const byPath = new Set(nodes.map((n) => n.path));
  const real = async (p: string) => realpath(p).catch(() => p);

  for (const m of parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'))) {
    // Btrfs shows an anonymous MAJ:MIN (0:NN): its source path names the device.
    const hit = byMajMin.get(m.majorMinor) ?? (m.source.startsWith('/dev/') && byPath.has(await real(m.source)) ? await real(m.source) : undefined);
    if (!hit) continue;
    return { device: hit, holder: m.mountPoint === '/' ? `the receiver's own root file system (${m.fsType} mounted at /)` : `a ${m.fsType} file system mounted at ${m.mountPoint}` };
  }

  const swaps = (await readFile('/proc/swaps', 'utf8').catch(() => '')).split('\n').slice(1);
  for (const line of swaps) {
    const file = line.split(/\s+/)[0];
    if (file && byPath.has(await real(file))) return { device: await real(file), holder: 'an active swap area' };
  }

  for (const n of nodes) {
    const holders = holdersOf(n.path);
    if (holders.length > 0) return { device: n.path, holder: `the stacked device(s) ${holders.join(', ')} (device-mapper or md)` };
  }

  // pvs scans every block device (about 90 ms on the whole-server bench): asked only when a node of this disk
  // carries an LVM label (a blank target disk has none).
  if (!(await Promise.all(nodes.map((n) => hasLvmLabel(n.path)))).some(Boolean)) return undefined;
  for (const line of (await pvs()).split('\n')) {
    const [pv, vg] = line.trim().split('|');
    if (!pv || !vg || !byPath.has(await real(pv))) continue;
    const lvs = await exec('lvs', ['--noheadings', '-o', 'lv_name,lv_attr', vg], { env: LVM_ENV }).catch(() => undefined);
    const active = (lvs?.stdout.split('\n') ?? []).map((l) => l.trim().split(/\s+/)).filter(([, attr]) => attr?.[4] === 'a');
    if (active.length > 0) return { device: pv, holder: `an LVM physical volume of volume group ${vg}, whose logical volume(s) ${active.map(([lv]) => lv).join(', ')} are active` };
  }
  return undefined;
}

/** Refuses (FERRY_DISK_IN_USE) the first disk something holds. */
export async function assertDisksFree(disks: Array<{ name: string; devices: string[] }>): Promise<void> {
  // pvs scans every block device (about 0.1 s): once for all the disks, and only if a labelled disk gets that far.
  let report: Promise<string> | undefined;
  const pvs = () => (report ??= readPvs());
  for (const d of disks) {
    const held = await diskHolder(d.devices, pvs);
    if (held) throw new FerryError('FERRY_DISK_IN_USE', `disk ${d.name}: ${held.device} holds ${held.holder}; the receiver will not write to it`);
  }
}
