// LVM on a receiver whose kernel has device-mapper: physical volumes,
// volume groups and logical volumes created with the layout's names (and the
// source's PV/VG UUIDs where the tools take them), deactivated when the
// session ends. Without device-mapper (this machine) the layout is flattened
// instead (layout/flatten-lvm.ts) and nothing here runs. Block mode
// never comes here: its PV partitions are copied byte for byte.

import { existsSync, readFileSync } from 'node:fs';
import { exec } from '../../platform/exec.js';
import type { VolumeGroup } from '../../layout/model.js';

/** The environment every LVM tool runs with here (no fd warnings, untranslated output). */
export const LVM_ENV = { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1', LC_ALL: 'C' };

const lvDevice = (vg: string, lv: string) => `/dev/${vg}/${lv}`;

export function hasDeviceMapper(): boolean {
  if (existsSync('/sys/class/misc/device-mapper')) return true;
  try {
    return /\bdevice-mapper\b/.test(readFileSync('/proc/misc', 'utf8'));
  } catch {
    return false;
  }
}

/** Creates `vg` on `pvs` (device paths with the source PV UUID) and its LVs; returns each LV's device by LV id. */
export async function createVolumeGroup(vg: VolumeGroup, pvs: Array<{ device: string; uuid: string }>): Promise<Map<string, string>> {
  for (const pv of pvs) {
    await exec('pvcreate', ['-ff', '-y', ...(pv.uuid ? ['--uuid', pv.uuid, '--norestorefile'] : []), pv.device], { env: LVM_ENV, timeoutMs: 60_000 });
  }
  await exec('vgcreate', ['-y', '-s', `${Math.floor(vg.extentBytes / 1024)}k`, vg.name, ...pvs.map((p) => p.device)], { env: LVM_ENV, timeoutMs: 60_000 });
  const devices = new Map<string, string>();
  for (const lv of vg.logicalVolumes) {
    await exec('lvcreate', ['-y', '-W', 'y', '-n', lv.name, '-L', `${Math.floor(lv.sizeBytes / 1024)}k`, vg.name], { env: LVM_ENV, timeoutMs: 60_000 });
    devices.set(lv.id, lvDevice(vg.name, lv.name));
  }
  return devices;
}

/** Activates a volume group made earlier (a recognised layout); returns each LV's device by LV id. */
export async function activateVolumeGroup(vg: VolumeGroup): Promise<Map<string, string>> {
  await exec('vgchange', ['-ay', vg.name], { env: LVM_ENV, timeoutMs: 60_000 });
  return new Map(vg.logicalVolumes.map((lv) => [lv.id, lvDevice(vg.name, lv.name)]));
}

export async function deactivateVolumeGroup(name: string): Promise<void> {
  await exec('vgchange', ['-an', name], { env: LVM_ENV, timeoutMs: 60_000 });
}
