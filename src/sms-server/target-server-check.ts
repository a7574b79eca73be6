// The local control plane's checks of a task's `target_server` (POST
// /v3/tasks, tables 4-99 and 4-102 to 4-105), each refused with the section
// 5.1 code that names it and a message that says where and what:
//   SMS.6031 no target_server, SMS.6032 no vm_id, SMS.6033 no disks list;
//   SMS.9001 a size that is not a non-negative integer (bytes), or a
//     physical-volume index used twice on one disk;
//   SMS.6105 a physical volume's size missing where its used size is given,
//     or not a non-negative integer;
//   SMS.6538 a partition's or logical volume's used size above its size (a
//     shrink below what it holds, e.g. an operator's adjust_size);
//   SMS.6614 a disk's used size above its size;
//   SMS.6509 a file system ferry does not know (the names it can create,
//     LVM2_member for an LVM physical volume, and Windows' own for block
//     copies); empty means none;
//   SMS.6541 a volume group smaller than its logical volumes together.
// It reads the raw body (before the zod schema), so that these answers come
// before the schema's generic SMS.6011; what it does not look at (types of
// other fields, ferry's extension fields) the schema still checks. Pure: no
// store, no I/O. An empty `disks` list is valid (table 4-99 allows 0
// entries): such a task copies the volumes its agent is configured with.

import { FILE_SYSTEMS } from '../layout/model.js';
import type { SmsCode } from '../errors/sms-codes.js';
import { badRequest, type ApiError } from './api-error.js';

/** LVM physical volumes (blkid's name) and the file systems Windows discovery reports (block copies only). */
const OTHER_KNOWN = ['LVM2_member', 'NTFS', 'ReFS', 'FAT', 'FAT32', 'exFAT'] as const;
/** Every file_system value a target_server may carry (compared without case); '' means none. */
export const KNOWN_FILE_SYSTEMS: readonly string[] = [...FILE_SYSTEMS, ...OTHER_KNOWN];
const known = new Set(KNOWN_FILE_SYSTEMS.map((f) => f.toLowerCase()));

export interface TargetServerProblem {
  code: SmsCode;
  /** Where, as a path into the body ('target_server.disks[0].physical_volumes[1].size'). */
  at: string;
  message: string;
}

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const isBytes = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
const fmt = (n: number) => `${n} bytes`;

/** Every problem of the body's `target_server`, in body order (empty when it is fine). */
export function targetServerProblems(body: unknown): TargetServerProblem[] {
  const out: TargetServerProblem[] = [];
  const add = (code: SmsCode, at: string, message: string) => out.push({ code, at, message });
  const ts = isRec(body) ? body.target_server : undefined;
  if (!isRec(ts)) {
    add('SMS.6031', 'target_server', 'The target server information is missing: the body needs a target_server object (table 4-99).');
    return out;
  }
  if (typeof ts.vm_id !== 'string') add('SMS.6032', 'target_server.vm_id', 'The target server ID is missing: target_server.vm_id must be a string (empty when the target is created for the task).');
  if (!Array.isArray(ts.disks)) {
    add('SMS.6033', 'target_server.disks', 'The disk information is missing: target_server.disks must be a list of target disks (table 4-102).');
  } else {
    ts.disks.forEach((d, i) => checkDisk(d, `target_server.disks[${i}]`, add));
  }
  const vgKey = ts.volume_groups !== undefined ? 'volume_groups' : 'volume_group_s';
  const vgs = ts[vgKey];
  if (Array.isArray(vgs)) vgs.forEach((vg, i) => checkVolumeGroup(vg, `target_server.${vgKey}[${i}]`, add));
  return out;
}

/** Throws the first problem as a 400 (all of them, up to 20, in error_param); returns when there is none. */
export function assertTargetServer(body: unknown): void {
  const problems = targetServerProblems(body);
  if (problems.length === 0) return;
  const first = problems[0]!;
  const more = problems.length > 1 ? ` (${problems.length - 1} more problem${problems.length > 2 ? 's' : ''} in error_param)` : '';
  const err: ApiError = badRequest(first.code, `${first.message}${more}`, problems.map((p) => `${p.at}: ${p.message}`));
  throw err;
}

type Add = (code: SmsCode, at: string, message: string) => void;

function sizes(o: Rec, at: string, what: string, add: Add, required: boolean, sizeCode: SmsCode): { size?: number; used?: number } {
  const r: { size?: number; used?: number } = {};
  for (const key of ['size', 'used_size'] as const) {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) add(key === 'size' ? sizeCode : 'SMS.9001', `${at}.${key}`, `${what}: ${key} is missing; it must be a non-negative integer (bytes).`);
      continue;
    }
    if (!isBytes(v)) {
      add(key === 'size' ? sizeCode : 'SMS.9001', `${at}.${key}`, `${what}: ${key} must be a non-negative integer (bytes), not ${show(v)}.`);
      continue;
    }
    if (key === 'size') r.size = v;
    else r.used = v;
  }
  return r;
}

function checkFileSystem(o: Rec, at: string, what: string, add: Add): void {
  const fs = o.file_system;
  if (fs === undefined || fs === null || fs === '') return;
  if (typeof fs !== 'string' || !known.has(fs.toLowerCase())) {
    add('SMS.6509', `${at}.file_system`, `${what}: file system ${show(fs)} is not one ferry knows; use one of ${KNOWN_FILE_SYSTEMS.join(', ')}, or '' for none.`);
  }
}

function checkDisk(d: unknown, at: string, add: Add): void {
  if (!isRec(d)) {
    add('SMS.9001', at, `Invalid parameters: ${at} must be an object (table 4-102).`);
    return;
  }
  const what = `Target disk ${typeof d.name === 'string' && d.name ? show(d.name) : at}`;
  const { size, used } = sizes(d, at, what, add, true, 'SMS.9001');
  if (size !== undefined && used !== undefined && used > size) {
    add('SMS.6614', `${at}.used_size`, `${what}: used_size ${fmt(used)} is larger than its size ${fmt(size)}; the target disk must hold all its partitions.`);
  }
  const pvs = d.physical_volumes;
  if (pvs === undefined || pvs === null) return;
  if (!Array.isArray(pvs)) {
    add('SMS.9001', `${at}.physical_volumes`, `${what}: physical_volumes must be a list (table 4-103).`);
    return;
  }
  const byIndex = new Map<number, number>();
  pvs.forEach((p, j) => {
    const pat = `${at}.physical_volumes[${j}]`;
    if (!isRec(p)) {
      add('SMS.9001', pat, `Invalid parameters: ${pat} must be an object (table 4-103).`);
      return;
    }
    const pwhat = `Partition ${typeof p.name === 'string' && p.name ? show(p.name) : `physical_volumes[${j}]`} of ${what.replace(/^Target disk/, 'target disk')}`;
    const s = sizes(p, pat, pwhat, add, false, 'SMS.6105');
    if (s.size === undefined && s.used !== undefined && p.size == null) {
      add('SMS.6105', `${pat}.size`, `${pwhat}: size is missing while used_size is given; give the partition's size in bytes.`);
    }
    if (s.size !== undefined && s.used !== undefined && s.used > s.size) {
      add('SMS.6538', `${pat}.used_size`, `${pwhat}: its size ${fmt(s.size)} is less than the ${fmt(s.used)} it uses; give it at least the used size (plus a margin).`);
    }
    checkFileSystem(p, pat, pwhat, add);
    const idx = p.index;
    if (idx === undefined || idx === null) return;
    if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < 0 || idx > 2_147_483_647) {
      add('SMS.9001', `${pat}.index`, `Invalid parameters: ${pwhat}: index must be an integer from 0 to 2147483647, not ${show(idx)}.`);
      return;
    }
    const first = byIndex.get(idx);
    if (first !== undefined) {
      add('SMS.9001', `${pat}.index`, `Invalid parameters: ${pwhat}: index ${idx} is already used by physical_volumes[${first}] on the same disk; indexes must be unique per disk.`);
    } else byIndex.set(idx, j);
  });
}

function checkVolumeGroup(vg: unknown, at: string, add: Add): void {
  if (!isRec(vg)) {
    add('SMS.9001', at, `Invalid parameters: ${at} must be an object (table 4-104).`);
    return;
  }
  const what = `Volume group ${typeof vg.name === 'string' && vg.name ? show(vg.name) : at}`;
  let size: number | undefined;
  for (const key of ['size', 'free_size'] as const) {
    const v = vg[key];
    if (v === undefined || v === null) continue;
    if (!isBytes(v)) add('SMS.9001', `${at}.${key}`, `${what}: ${key} must be a non-negative integer (bytes), not ${show(v)}.`);
    else if (key === 'size') size = v;
  }
  const lvs = vg.logical_volumes;
  if (lvs === undefined || lvs === null) return;
  if (!Array.isArray(lvs)) {
    add('SMS.9001', `${at}.logical_volumes`, `${what}: logical_volumes must be a list (table 4-105).`);
    return;
  }
  let total = 0;
  lvs.forEach((lv, k) => {
    const lat = `${at}.logical_volumes[${k}]`;
    if (!isRec(lv)) {
      add('SMS.9001', lat, `Invalid parameters: ${lat} must be an object (table 4-105).`);
      return;
    }
    const lwhat = `Logical volume ${typeof lv.name === 'string' && lv.name ? show(lv.name) : `logical_volumes[${k}]`} of ${what.replace(/^Volume group/, 'volume group')}`;
    const s = sizes(lv, lat, lwhat, add, true, 'SMS.9001');
    if (s.size !== undefined && s.used !== undefined && s.used > s.size) {
      add('SMS.6538', `${lat}.used_size`, `${lwhat}: its size ${fmt(s.size)} is less than the ${fmt(s.used)} it uses; give it at least the used size (plus a margin).`);
    }
    checkFileSystem(lv, lat, lwhat, add);
    total += s.size ?? 0;
  });
  if (size !== undefined && total > size) {
    add('SMS.6541', `${at}.size`, `${what}: its size ${fmt(size)} is smaller than its logical volumes together (${fmt(total)}); make the volume group larger or the logical volumes smaller.`);
  }
}
