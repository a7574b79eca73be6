// The source server's whole layout (layout/model.ts) as a whole-server
// migration copies it: every disk's partition table (`sfdisk --json`), each
// partition's file system (`blkid -p`), where it is mounted below the source
// root (/proc/self/mountinfo) and how much it uses (statfs), Btrfs
// subvolumes (btrfs-progs, on any mount of the file system), LVM volume
// groups and logical volumes (pvs/vgs/lvs JSON reports, which need no
// device-mapper; an inactive LV's file system is probed at its first extent).
// Reads the machine, writes nothing. What it cannot read becomes a warning
// and a conservative value (an unmounted file system counts as full, so
// nobody shrinks it blindly). The inventory for SMS is inventory.ts's, not this.

import { readFile, readdir, statfs } from 'node:fs/promises';
import { basename } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../../errors/ferry-error.js';
import { exec } from '../../platform/exec.js';
import { concurrencyLimit } from '../../platform/map-limit.js';
import { discoveryToolEnv } from './tool-env.js';
import { isExtended } from '../../layout/geometry.js';
import { LAYOUT_VERSION, type Content, type Disk, type Layout, type Partition, type VolumeGroup } from '../../layout/model.js';
import { parseBlkidExport, rawFromEscaped, splitBlkidExport } from './blkid.js';
import { parseGetDefault, parseSubvolumeList } from './btrfs.js';
import { isWholeDiskName } from './collect.js';
import { lvFirstExtents, mapperName, parseLvs, parsePvs, parseVgs } from './lvm.js';
import { parseMountinfo } from './mountinfo.js';
import { compareCodeUnits } from '../../platform/compare.js';

export interface SourceLayoutOptions {
  /** Where the source system's / is mounted (default '/'); mount points in the layout are relative to it. */
  sourceRoot?: string;
  /** Only these disks, in this order (admits loop devices); default: every whole disk under /sys/block, sorted. */
  sourceDisks?: string[];
  timeoutMs?: number;
}

const FILE_SYSTEM_TYPES = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat']);

const sfdiskSchema = z.object({
  partitiontable: z.object({
    label: z.enum(['gpt', 'dos']),
    id: z.string().default(''),
    sectorsize: z.number().int().positive().default(512),
    partitions: z
      .array(
        z.object({
          node: z.string(),
          start: z.number().int().nonnegative(),
          size: z.number().int().nonnegative(),
          type: z.string(),
          uuid: z.string().optional(),
          name: z.string().optional(),
          attrs: z.string().optional(),
          bootable: z.boolean().optional(),
        }),
      )
      .default([]),
  }),
});

/** sfdisk prints GPT attributes space-separated ("RequiredPartition GUID:60"), older versions comma-separated. */
export function parseSfdiskAttrs(attrs: string | undefined): string[] {
  return (attrs ?? '').split(/[\s,]+/).filter(Boolean);
}

/** A mount point below `root`, made relative to it ('/' for root itself); undefined when outside. */
export function relativeMountPoint(root: string, mountPoint: string): string | undefined {
  const r = root === '/' ? '' : root.replace(/\/+$/, '');
  if (r === '') return mountPoint;
  if (mountPoint === r) return '/';
  return mountPoint.startsWith(`${r}/`) ? mountPoint.slice(r.length) : undefined;
}

/**
 * Tools run side by side, this many at a time: each is mostly process start
 * and device reads (on the whole-server benchmark's two disks, 21 of them one
 * after the other took 0.75 s).
 */
const TOOLS_AT_ONCE = 6;

/** A tool started: its stdout, or the warning it failed with (taken in the layout's order by take()). */
type Started = Promise<{ out?: string; warning?: string }>;

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export async function discoverSourceLayout(options: SourceLayoutOptions = {}): Promise<{ layout: Layout; warnings: string[] }> {
  const root = options.sourceRoot ?? '/';
  const timeoutMs = options.timeoutMs ?? 30_000;
  const warnings: string[] = [];
  // Every tool is started as soon as what it needs is known and its result
  // taken where the layout is built, in the same order as ever: the layout and
  // its warnings read as if the tools had run one after the other.
  const limited = concurrencyLimit(TOOLS_AT_ONCE);
  const start = (file: string, args: string[], okCodes = [0]): Started =>
    limited(() => exec(file, args, { timeoutMs, okCodes, env: discoveryToolEnv() })).then(
      (r) => ({ out: r.stdout }),
      (err: unknown) => ({ warning: `${file} ${args.join(' ')}: ${errorMessage(err).split('\n')[0]!.slice(0, 300)}` }),
    );
  const take = async (started: Started): Promise<string | undefined> => {
    const r = await started;
    if (r.warning !== undefined) warnings.push(r.warning);
    return r.out;
  };

  const diskDevices =
    options.sourceDisks ??
    (await readdir('/sys/block').catch(() => [] as string[]))
      .filter((n) => isWholeDiskName(n))
      .sort()
      .map((n) => `/dev/${n}`);

  const mounts = parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''));
  const underRoot = mounts.flatMap((m) => {
    const rel = relativeMountPoint(root, m.mountPoint);
    return rel === undefined ? [] : [{ ...m, rel }];
  });
  const majorMinor = async (dev: string): Promise<string> =>
    (await readFile(`/sys/class/block/${basename(dev)}/dev`, 'utf8').catch(() => '')).trim();
  const mountsOf = async (dev: string) => {
    const mm = await majorMinor(dev);
    return underRoot
      .filter((m) => m.source === dev || (mm !== '' && m.majorMinor === mm))
      .sort((a, b) => a.rel.length - b.rel.length || compareCodeUnits(a.rel, b.rel));
  };
  const usedOf = async (mountPoint: string): Promise<number | undefined> => {
    try {
      const s = await statfs(mountPoint);
      return Math.max(0, (s.blocks - s.bfree) * s.bsize);
    } catch (err) {
      warnings.push(`statfs ${mountPoint}: ${errorMessage(err)}`);
      return undefined;
    }
  };
  // -d: labels as their bytes (UTF-8), not blkid's M-x encoding: the target's mkfs gets them back as they were.
  const blkid = (args: string[]): Started => start('blkid', ['-p', '-d', '-o', 'export', ...args], [0, 2]);
  const takeBlkid = async (started: Started): Promise<Record<string, string>> => {
    const out = await take(started);
    return out === undefined ? {} : parseBlkidExport(out, { raw: true });
  };

  // ---- started at once: the LVM reports and every disk's table, then each partition's blkid as soon as its table is read
  const pvsStarted = start('pvs', ['--reportformat', 'json', '--units', 'b', '-o', 'pv_name,vg_name,pv_size,pv_uuid,pe_start']);
  const vgsStarted = start('vgs', ['--reportformat', 'json', '--units', 'b', '-o', 'vg_name,vg_size,vg_free,vg_uuid,vg_extent_size']);
  const lvsStarted = start('lvs', ['--reportformat', 'json', '--units', 'b', '-o', 'lv_name,vg_name,lv_size,lv_path,lv_dm_path,lv_active']);
  const tables = diskDevices.map((device) => {
    const json = start('sfdisk', ['--json', device]);
    // A table that does not parse probes nothing here: the walk below parses it again and fails as it always did.
    const probes = json.then(({ out }) => {
      const table = out === undefined ? undefined : sfdiskSchema.safeParse(safeJson(out)).data?.partitiontable;
      const parts = table?.partitions ?? [];
      const probed = parts.map((p) => !(table!.label === 'dos' && isExtended({ type: p.type.toLowerCase().replace(/^0(?=.)/, '') })));
      const nodes = parts.filter((_, i) => probed[i]).map((p) => p.node);
      // One blkid for the disk's partitions (measured: one per partition was 10 of the whole-server
      // benchmark's discovery tools, ~0.15 s of it), escaped (see splitBlkidExport); a partition the batch
      // did not answer for, or whose values the escaping leaves unsure, is probed alone with -d as before.
      // (A batch that times out costs its timeout once more: each partition then gets its own.)
      const batch =
        nodes.length > 1
          ? start('blkid', ['-p', '-o', 'export', ...nodes], [0, 2]).then((r) => (r.out === undefined ? new Map<string, string>() : splitBlkidExport(r.out, nodes)))
          : undefined;
      return parts.map((p, i): Started | undefined => {
        if (!probed[i]) return undefined;
        if (!batch) return blkid([p.node]);
        return batch.then((got) => {
          const block = got.get(p.node);
          const raw = block === undefined ? undefined : rawFromEscaped(block);
          return raw === undefined ? blkid([p.node]) : { out: raw };
        });
      });
    });
    return { device, json, probes };
  });

  // ---- LVM (before the partitions: a PV's content names its VG)
  const pvsJson = await take(pvsStarted);
  const vgsJson = await take(vgsStarted);
  const lvsJson = await take(lvsStarted);
  const pvRows = pvsJson ? parsePvs(pvsJson) : [];
  const lvRowsAll = lvsJson ? parseLvs(lvsJson) : [];
  // Where an inactive LV's file system starts (blkid probes it there): started now when some LV is
  // inactive, taken below only when one of the volume groups on these disks has one.
  const segmentsStarted =
    pvsJson && vgsJson && lvRowsAll.some((lv) => lv.lv_active !== 'active')
      ? start('lvs', ['--segments', '--reportformat', 'json', '--units', 'b', '-o', 'lv_name,vg_name,lv_dm_path,seg_start_pe,seg_pe_ranges,segtype,seg_size'])
      : undefined;

  const fsContent = async (device: string, id: Record<string, string>, sizeBytes: number, what: string): Promise<Content> => {
    const type = id.TYPE ?? '';
    if (type === 'swap') return { kind: 'swap', uuid: id.UUID ?? '', label: id.LABEL ?? '' };
    if (type === 'LVM2_member') {
      const vg = pvRows.find((p) => p.pv_name === device)?.vg_name ?? '';
      if (vg === '') {
        warnings.push(`${what}: an LVM physical volume in no volume group: laid out as an empty partition`);
        return { kind: 'none' };
      }
      return { kind: 'lvm-pv', vg, uuid: id.UUID ?? '' };
    }
    if (!FILE_SYSTEM_TYPES.has(type)) {
      if (type !== '') warnings.push(`${what}: file system ${type} is not one ferry creates: laid out as an empty partition, not copied`);
      return { kind: 'none' };
    }
    const fsType = type as 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'btrfs' | 'vfat';
    const ms = await mountsOf(device);
    const whole = ms.find((m) => m.root === '/');
    const content: Content = {
      kind: 'filesystem',
      fsType,
      uuid: id.UUID ?? '',
      label: id.LABEL ?? '',
      mountPoint: whole?.rel ?? '',
      usedBytes: sizeBytes,
      subvolumes: [],
      defaultSubvolume: '',
    };
    const anyMount = whole ?? ms[0] ?? mounts.find((m) => m.source === device);
    if (anyMount) {
      const used = await usedOf(anyMount.mountPoint);
      if (used !== undefined) content.usedBytes = used;
    } else if (fsType !== 'vfat') {
      warnings.push(`${what}: ${fsType} is not mounted: its used space is unknown and counted as its whole size (no shrink)`);
    }
    if (fsType === 'btrfs' && anyMount) {
      const lists = [
        start('btrfs', ['subvolume', 'list', '-a', '-p', '-u', '-q', anyMount.mountPoint]),
        start('btrfs', ['subvolume', 'list', '-a', '-r', '-p', '-u', '-q', anyMount.mountPoint]),
        start('btrfs', ['subvolume', 'get-default', anyMount.mountPoint]),
      ];
      const all = await take(lists[0]!);
      const ro = await take(lists[1]!);
      const def = await take(lists[2]!);
      const readOnly = new Set(parseSubvolumeList(ro ?? '').map((s) => s.id));
      const listed = parseSubvolumeList(all ?? '').sort((a, b) => Number(a.id) - Number(b.id));
      content.subvolumes = listed.map((s) => ({
        path: s.path,
        readOnlyOnSource: readOnly.has(s.id),
        mountPoint: ms.find((m) => m.root.replace(/^\/+/, '') === s.path)?.rel ?? '',
      }));
      const d = parseGetDefault(def ?? '');
      content.defaultSubvolume = d.id === '5' || d.id === '' ? '' : (listed.find((s) => s.id === d.id)?.path ?? d.name);
    } else if (fsType === 'btrfs') {
      warnings.push(`${what}: btrfs is not mounted: its subvolumes cannot be listed (mount it, or any subvolume of it)`);
    }
    return content;
  };

  // ---- disks and partitions
  const disks: Disk[] = [];
  for (const { device, json: tableStarted, probes: probesStarted } of tables) {
    const name = `disk${disks.length}`;
    const json = await take(tableStarted);
    const probes = await probesStarted;
    if (json === undefined) {
      warnings.push(`${device}: no partition table sfdisk reads: left out of the layout`);
      continue;
    }
    const table = sfdiskSchema.parse(JSON.parse(json)).partitiontable;
    const sectors = Number((await readFile(`/sys/class/block/${basename(device)}/size`, 'utf8').catch(() => '0')).trim());
    const partitions: Partition[] = [];
    for (const [k, p] of table.partitions.entries()) {
      const number = Number(/(\d+)$/.exec(p.node)?.[1] ?? 0);
      const id = `${name}p${number}`;
      const sizeBytes = p.size * table.sectorsize;
      const type = table.label === 'gpt' ? p.type.toUpperCase() : p.type.toLowerCase().replace(/^0(?=.)/, '');
      const extended = table.label === 'dos' && isExtended({ type });
      const content: Content = extended ? { kind: 'none' } : await fsContent(p.node, await takeBlkid(probes[k] ?? blkid([p.node])), sizeBytes, `${device} partition ${number}`);
      partitions.push({
        id,
        number,
        sizeBytes,
        sourceSizeBytes: sizeBytes,
        startBytes: p.start * table.sectorsize,
        type,
        name: p.name ?? '',
        partUuid: table.label === 'gpt' ? (p.uuid ?? '') : '',
        attrs: parseSfdiskAttrs(p.attrs),
        bootable: p.bootable === true,
        logical: table.label === 'dos' && number >= 5,
        sourceDevice: p.node,
        content,
      });
    }
    disks.push({ name, sizeBytes: sectors * 512, table: table.label, tableId: table.id, partitions, sourceDevice: device });
  }

  // ---- volume groups of the PVs found on these disks
  const pvNodes = new Set(disks.flatMap((d) => d.partitions.filter((p) => p.content.kind === 'lvm-pv').map((p) => p.sourceDevice)));
  const vgNames = [...new Set(pvRows.filter((p) => pvNodes.has(p.pv_name) && p.vg_name !== '').map((p) => p.vg_name))];
  const vgRows = vgsJson ? parseVgs(vgsJson) : [];
  const lvRows = lvRowsAll;
  let located = new Map<string, { pv: string; offset: number; size: number }>();
  if (lvRows.some((lv) => vgNames.includes(lv.vg_name) && lv.lv_active !== 'active') && pvsJson && vgsJson && segmentsStarted) {
    const seg = await take(segmentsStarted);
    if (seg) located = lvFirstExtents(seg, pvsJson, vgsJson);
  }
  // Every LV's blkid at once, taken in order below.
  const lvProbes = new Map(
    vgNames.flatMap((vg) =>
      lvRows
        .filter((l) => l.vg_name === vg)
        .map((lv) => {
          const dm = lv.lv_dm_path || mapperName(vg, lv.lv_name);
          const at = lv.lv_active === 'active' ? undefined : located.get(dm);
          const probe = lv.lv_active === 'active' ? blkid([dm]) : at ? blkid(['-O', String(at.offset), '-S', String(at.size), at.pv]) : undefined;
          return [lv, probe] as const;
        }),
    ),
  );
  const volumeGroups: VolumeGroup[] = [];
  for (const vg of vgNames) {
    const row = vgRows.find((v) => v.vg_name === vg);
    const logicalVolumes = [];
    for (const lv of lvRows.filter((l) => l.vg_name === vg)) {
      const dm = lv.lv_dm_path || mapperName(vg, lv.lv_name);
      const what = `logical volume ${vg}/${lv.lv_name}`;
      const probe = lvProbes.get(lv);
      const id: Record<string, string> = probe ? await takeBlkid(probe) : {};
      const device = lv.lv_active === 'active' ? dm : lv.lv_path || `/dev/${vg}/${lv.lv_name}`;
      logicalVolumes.push({
        id: `${vg}-${lv.lv_name}`.slice(0, 64),
        name: lv.lv_name,
        sizeBytes: lv.lv_size,
        sourceSizeBytes: lv.lv_size,
        sourceDevice: device,
        content: await fsContent(dm, id, lv.lv_size, what),
      });
    }
    volumeGroups.push({ name: vg, uuid: row?.vg_uuid ?? '', extentBytes: row?.vg_extent_size ?? 4 << 20, logicalVolumes });
  }
  if (disks.length === 0) warnings.push('no disk with a partition table was found');
  return { layout: { version: LAYOUT_VERSION, disks, volumeGroups }, warnings };
}
