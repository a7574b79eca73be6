// Laying out one migration's target disks, start to end: check the request
// (validate, tools, fit, disks free) before anything is written; recognise
// disks that already hold this layout (same hash, recorded table ids and
// UUIDs still there: nothing is written); otherwise write the partition
// tables, LVM (with device-mapper) or the flattened partitions (without),
// file systems and swap, recording 'laying-out' then 'laid-out' in
// layout.json; then mount Btrfs top levels (creating subvolumes when new) and
// the target tree. On any failure whatever was mounted or attached is undone.
// The result (LaidOutSystem) holds the mounts and loop devices until release().

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import { exec } from '../../platform/exec.js';
import type { Logger } from '../../platform/log.js';
import { mapLimitSettled } from '../../platform/map-limit.js';
import { layoutVolumes, type CopyMode, type Layout } from '../../layout/model.js';
import type { SystemDisk } from '../../layout/system-session.js';
import { flattenLvm } from '../../layout/flatten-lvm.js';
import { isWholeDiskCopy, layoutHash } from '../../layout/plan.js';
import { validateLayout } from '../../layout/validate.js';
import { loopsBacking, partitionDevice, partitionsOf, rereadPartitions } from './block-devices.js';
import { createSubvolumes } from './btrfs-subvolumes.js';
import { assertDisksFree } from './disk-guard.js';
import { closeDisk, openDisk, type DiskSpec, type OpenDisk } from './disks.js';
import { assertFormatTools, makeFileSystem, uuidGiven } from './format.js';
import { blkidUuid, readLayoutState, writeLayoutState, type LayoutState } from './layout-state.js';
import { activateVolumeGroup, createVolumeGroup, deactivateVolumeGroup, hasDeviceMapper } from './lvm.js';
import { assertSafePaths, planMounts, runMountPlan } from './mount-plan.js';
import { MountStack } from './mounts.js';
import { placePartitions, tableIdOf, writePartitionTable, type Placed } from './partition-table.js';
import type { SystemPaths } from './system-paths.js';
import { volumesOf, type ServedVolume } from './volumes.js';

export interface LayoutRequest {
  mode: CopyMode;
  layout: Layout;
  relayout: boolean;
}

export interface LaidOutSystem {
  state: 'created' | 'recognised';
  /** The layout as made (LVs flattened where there is no device-mapper, partition starts filled in). */
  made: Layout;
  notes: string[];
  volumes: ServedVolume[];
  mode: CopyMode;
  /** Volume id (partition or LV) → its device on the receiver. */
  devices: Map<string, string>;
  /** Disk name → its device on the receiver (a loop device over an image file). */
  diskDevices: Map<string, string>;
  /** Undoes the session's mounts, volume groups and loop devices (reverse order). */
  release(): Promise<void>;
}

/**
 * Tables and file systems on different devices are made this many at a
 * time: each tool mostly waits on the kernel or the disk. On the
 * whole-server benchmark (2 cores) tables and mkfs one after the other took
 * 0.8 s of the layout step's 1.4 s.
 */
const AT_ONCE = 4;

interface Resources {
  mounts: MountStack;
  disks: OpenDisk[];
  groups: string[];
}

async function releaseAll(r: Resources, log: Logger): Promise<void> {
  await r.mounts.unmountAll(log);
  for (const g of r.groups.splice(0)) await deactivateVolumeGroup(g).catch((e: unknown) => log.warn({ vg: g, err: errorMessage(e) }, 'deactivating a volume group failed'));
  for (const d of r.disks.splice(0)) await closeDisk(d).catch((e: unknown) => log.warn({ device: d.device, err: errorMessage(e) }, 'detaching a loop device failed'));
}

/** Tool failures while writing become FERRY_LAYOUT_FAILED (refusals keep their own codes). */
function asLayoutFailure(e: unknown): unknown {
  if (e instanceof FerryError && e.code.startsWith('FERRY_TOOL_')) return new FerryError('FERRY_LAYOUT_FAILED', `laying out the target disks failed: ${e.message}`);
  return e;
}

export async function layOut(req: LayoutRequest, given: DiskSpec[], described: SystemDisk[], paths: SystemPaths, log: Logger): Promise<LaidOutSystem> {
  // 1. Everything that can be refused is refused before a byte is written.
  validateLayout(req.layout, described, req.mode);
  assertSafePaths(req.layout);
  const lvm = req.mode === 'file' && req.layout.volumeGroups.length > 0;
  const dm = lvm && hasDeviceMapper();
  const flat = lvm && !dm ? flattenLvm(req.layout) : { layout: req.layout, notes: [] };
  const layout = flat.layout;
  // The LV ids that became partitions, for each volume's `flattenedFrom`.
  const flattenedFrom = new Map(layout === req.layout ? [] : req.layout.volumeGroups.flatMap((vg) => vg.logicalVolumes.map((lv) => [lv.id, `${vg.name}/${lv.name}`] as const)));
  if (req.mode === 'file') await assertFormatTools(layout);
  const size = new Map(described.map((d) => [d.name, d]));
  const placed = new Map<string, Placed[]>();
  for (const d of layout.disks) placed.set(d.name, placePartitions(d, size.get(d.name)!.sectorBytes));
  // Asked of the layout as requested: the layout as made has every start filled in.
  const wholeDisk = new Map(layout.disks.map((d) => [d.name, req.mode === 'block' && isWholeDiskCopy(d, d, size.get(d.name)!.sizeBytes)]));
  const made: Layout = {
    ...layout,
    // Copies: formatAll may record a file system's new UUID in them.
    volumeGroups: layout.volumeGroups.map((vg) => ({ ...vg, logicalVolumes: vg.logicalVolumes.map((lv) => ({ ...lv })) })),
    disks: layout.disks.map((d) => ({ ...d, partitions: placed.get(d.name)!.map((x) => ({ ...x.partition, startBytes: x.startBytes, sizeBytes: x.sizeBytes })) })),
  };
  const hash = layoutHash(req.layout);
  const diskPaths = Object.fromEntries(layout.disks.map((d) => [d.name, given.find((g) => g.name === d.name)!.path]));
  const previous = await readLayoutState(paths.dir);
  const sameDisks = previous !== undefined && JSON.stringify(previous.disks) === JSON.stringify(diskPaths);
  if (previous?.state === 'laid-out' && !req.relayout && (previous.hash !== hash || previous.mode !== req.mode || !sameDisks)) {
    throw new FerryError('FERRY_LAYOUT_CHANGED', `migration ${paths.id}: the disks were laid out for another layout (recorded ${previous.hash.slice(0, 12)} in ${req.mode === previous.mode ? '' : `${previous.mode} mode, `}now ${hash.slice(0, 12)}); only an explicit re-layout wipes them`);
  }

  const res: Resources = { mounts: new MountStack(), disks: [], groups: [] };
  try {
    for (const d of layout.disks) res.disks.push(await openDisk(given.find((g) => g.name === d.name)!));
    const others = await Promise.all(res.disks.map(async (d) => (d.attached ? (await loopsBacking(d.path)).filter((l) => l !== d.device) : [])));
    await assertDisksFree(res.disks.map((d, i) => ({ name: d.name, devices: [d.device, ...others[i]!] })));
    const deviceOf = (name: string) => res.disks.find((d) => d.name === name)!.device;
    const devices = new Map<string, string>();
    for (const d of made.disks) for (const p of d.partitions) devices.set(p.id, partitionDevice(deviceOf(d.name), p.number));

    let state: LaidOutSystem['state'] = 'created';
    let record: LayoutState;
    // The file systems being made (a new layout): each mount below waits for its own.
    let formatting: Formatting | undefined;
    if (previous?.state === 'laid-out' && !req.relayout) {
      // A loop device attached just now shows its partitions a moment later.
      await mapLimitSettled(made.disks, AT_ONCE, (d) => rereadPartitions(deviceOf(d.name), d.partitions.map((p) => p.number)));
      await assertRecognised(previous, made, deviceOf, devices);
      state = 'recognised';
      record = previous;
    } else {
      record = { state: 'laying-out', hash, mode: req.mode, layout: made, disks: diskPaths, tableIds: {}, uuids: {}, notes: flat.notes };
      await mkdir(paths.dir, { recursive: true, mode: 0o700 });
      await writeLayoutState(paths.dir, record);
      // Each disk is its own device: the tables are written side by side (sfdisk, then the
      // kernel's re-read and the wait for the partition nodes, is mostly waiting).
      const tableIds = await mapLimitSettled(made.disks, AT_ONCE, async (d) => {
        const dev = deviceOf(d.name);
        if (req.relayout || previous) await wipe(dev);
        await writePartitionTable(d, dev, placed.get(d.name)!, size.get(d.name)!.sectorBytes);
        // A whole-disk block copy brings the source's own table: nothing of ours to recognise it by.
        return wholeDisk.get(d.name) ? undefined : await tableIdOf(dev);
      });
      made.disks.forEach((d, i) => {
        const id = tableIds[i];
        if (id !== undefined) record.tableIds[d.name] = id;
      });
      if (dm) {
        for (const vg of layout.volumeGroups) {
          const pvs = made.disks.flatMap((d) => d.partitions).filter((p) => p.content.kind === 'lvm-pv' && p.content.vg === vg.name);
          const lvDevices = await createVolumeGroup(vg, pvs.map((p) => ({ device: devices.get(p.id)!, uuid: p.content.kind === 'lvm-pv' ? p.content.uuid : '' })));
          res.groups.push(vg.name);
          for (const [id, dev] of lvDevices) devices.set(id, dev);
        }
      }
      formatting = formatAll(req.mode, made, devices, record);
    }
    if (state === 'recognised' && dm) {
      for (const vg of layout.volumeGroups) {
        for (const [id, dev] of await activateVolumeGroup(vg)) devices.set(id, dev);
        res.groups.push(vg.name);
      }
    }
    // Each mount waits for its own file system and the mounts it depends on
    // (runMountPlan): the tree is mounted while the last file systems are
    // still being made, and mounts that do not depend on each other side by
    // side; a failure on either side is thrown once both have stopped.
    const mounting = async () => {
      if (req.mode !== 'file') return;
      await runMountPlan(planMounts(made, devices, paths), AT_ONCE, (m) => formatting?.made(m.device) ?? Promise.resolve(), async (m) => {
        await res.mounts.mount(m.device, m.dir, m.options);
        if (m.btrfs && state === 'created') await createSubvolumes(m.dir, m.btrfs.subvolumes, m.btrfs.defaultSubvolume);
      }, state === 'created');
    };
    const [formatted, mounted] = await Promise.allSettled([formatting?.all, mounting()]);
    if (formatted.status === 'rejected') throw formatted.reason;
    if (mounted.status === 'rejected') throw mounted.reason;
    if (state === 'created') {
      record.state = 'laid-out';
      await writeLayoutState(paths.dir, record);
    }
    const volumes = volumesOf({
      mode: req.mode,
      layout: made,
      paths,
      devices,
      flattenedFrom,
      disks: new Map(made.disks.map((d) => [d.name, { device: deviceOf(d.name), sizeBytes: size.get(d.name)!.sizeBytes, wholeDisk: wholeDisk.get(d.name)! }])),
    });
    // A file volume with other file systems mounted below it in the target tree
    // ('/' under /boot, /home …) is served at a non-recursive bind of its own
    // mount (DATA/systems/ID/fs/VOLID): a pass into the tree would write the
    // times and modes of its mount-point directories onto the roots of the file
    // systems mounted there, and never reach the directories themselves.
    if (req.mode === 'file') {
      const tree = [...res.mounts.mounted];
      for (const v of volumes) {
        if (v.volume.kind !== 'file' || v.volume.subvolume !== undefined || !tree.some((m) => m.startsWith(`${v.path}/`))) continue;
        const own = join(paths.dir, 'fs', v.volume.id.replace(/[^A-Za-z0-9_.-]/g, '_'));
        await res.mounts.bind(v.path, own);
        v.path = own;
      }
    }
    log.info({ id: paths.id, state, volumes: volumes.length, mounts: res.mounts.mounted.length }, 'system laid out');
    // Recognised: the layout as it was made then (a file system may have got a new UUID, see format.ts).
    return {
      state,
      made: state === 'recognised' ? record.layout : made,
      notes: record.notes,
      volumes,
      mode: req.mode,
      devices,
      diskDevices: new Map(res.disks.map((d) => [d.name, d.device])),
      release: () => releaseAll(res, log),
    };
  } catch (e) {
    await releaseAll(res, log);
    throw asLayoutFailure(e);
  }
}

/** Old signatures off the disk and its partitions (a re-layout, or a layout interrupted part way). */
async function wipe(device: string): Promise<void> {
  for (const p of partitionsOf(device)) await exec('wipefs', ['-a', '-q', p]).catch(() => undefined);
  await exec('wipefs', ['-a', '-q', device]);
}

interface Formatting {
  /** Settles once every file system was made (or, after a failure, every mkfs started has ended). */
  all: Promise<void>;
  /** Resolves once the file system on `device` was made (at once for a device formatAll makes nothing on); rejects if it never will be. */
  made(device: string): Promise<void>;
}

/** A promise settled from outside (Promise.withResolvers is Node 22's); a rejection nobody awaits is not an unhandled one. */
function signal(): { promise: Promise<void>; resolve(): void; reject(e: unknown): void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * Every file system and swap of the layout, AT_ONCE at a time (each on its
 * own device; mkfs mostly waits on writes), Btrfs first. What is recorded
 * (UUIDs, notes, a replaced UUID in the layout as made) is recorded in the
 * layout's order once all are made; the first failure in the order they
 * started is thrown, after the others have ended (the record stays
 * 'laying-out': the next layout wipes).
 */
function formatAll(mode: CopyMode, made: Layout, devices: Map<string, string>, record: LayoutState): Formatting {
  // Block mode copies file systems byte for byte: only swap, which is never copied, is made here.
  const jobs = layoutVolumes(made).flatMap((v) => {
    const c = v.content;
    const device = devices.get(v.id);
    return device && (c.kind === 'swap' || (c.kind === 'filesystem' && mode === 'file')) ? [{ v, c, device }] : [];
  });
  const ready = new Map(jobs.map(({ device }) => [device, signal()]));
  const keep = (results: { uuidReplaced: boolean; uuid: string }[]) =>
    jobs.forEach(({ v, c }, i) => {
      const { uuidReplaced, uuid } = results[i]!;
      record.uuids[v.id] = uuid;
      if (uuidReplaced) {
        record.notes.push(`${v.id}: btrfs UUID ${c.uuid} is in use by another file system on this machine (the receiver runs beside the source): made with ${uuid}`);
        v.content = { ...c, uuid };
      }
    });
  // Btrfs first: its top level is mounted and its subvolumes created before any of them can be mounted, the
  // longest chain of the step (mkfs.btrfs was also the slowest mkfs on the whole-server bench: 85 ms).
  const btrfs = (i: number) => Number(jobs[i]!.c.kind === 'filesystem' && jobs[i]!.c.fsType === 'btrfs');
  const order = [...jobs.keys()].sort((a, b) => btrfs(b) - btrfs(a) || a - b);
  const all = (async () => {
    try {
      const results: { uuidReplaced: boolean; uuid: string }[] = new Array(jobs.length);
      await mapLimitSettled(order, AT_ONCE, async (i) => {
        const { c, device } = jobs[i]!;
        const { uuidReplaced } = await makeFileSystem(c, device);
        // A UUID the command line gave is recorded as given; blkid reads back the rest (one program start
        // fewer per file system: the receiver's main thread forks for each, and the mounts wait for this).
        const uuid = uuidGiven(c, uuidReplaced) ?? (await blkidUuid(device));
        ready.get(device)!.resolve();
        results[i] = { uuidReplaced, uuid };
      });
      keep(results);
    } finally {
      // A file system not made by now never will be (an earlier one failed): its mount is not attempted.
      for (const [device, r] of ready) r.reject(new FerryError('FERRY_LAYOUT_FAILED', `the file system on ${device} was not made: an earlier one failed`));
    }
  })();
  return { all, made: (device) => ready.get(device)?.promise ?? Promise.resolve() };
}

/** The disks still carry what was recorded: each table's id and each file system's UUID. */
async function assertRecognised(s: LayoutState, made: Layout, deviceOf: (name: string) => string, devices: Map<string, string>): Promise<void> {
  const differ = (what: string, want: string, got: string) =>
    new FerryError('FERRY_LAYOUT_CHANGED', `${what} is not what this receiver laid out (recorded ${want || 'none'}, found ${got || 'none'}): the disk was changed by someone else; only an explicit re-layout wipes it`);
  // Read side by side, compared in order (the first difference is the one reported).
  const tables = made.disks.filter((d) => s.tableIds[d.name] !== undefined);
  const uuids = Object.entries(s.uuids).flatMap(([id, want]) => {
    const dev = devices.get(id);
    return dev ? [{ id, want, dev }] : [];
  });
  const [tableGot, uuidGot] = await Promise.all([
    mapLimitSettled(tables, AT_ONCE, (d) => tableIdOf(deviceOf(d.name)).catch(() => '')),
    mapLimitSettled(uuids, AT_ONCE, (u) => blkidUuid(u.dev)),
  ]);
  tables.forEach((d, i) => {
    const got = tableGot[i]!;
    const want = s.tableIds[d.name] ?? '';
    if (got.toLowerCase() !== want.toLowerCase()) throw differ(`the partition table of disk ${d.name}`, want, got);
  });
  uuids.forEach(({ id, want, dev }, i) => {
    const got = uuidGot[i]!;
    if (got !== want) throw differ(`the file system of ${id} (${dev})`, want, got);
  });
}

