// Reads the raw facts of a Linux host into a LinuxSnapshot: /sys/block,
// the first two logical blocks of every disk, blkid (low-level probe, works
// without udev), /proc/self/mountinfo, statfs, ext/xfs superblocks, LVM's
// JSON reports, btrfs-progs, /sys/class/net, /proc/net, DMI. Every command
// runs through platform/exec with a timeout; anything unreadable is recorded
// as a failed ToolOutput or a warning, never thrown.

import { existsSync } from 'node:fs';
import { open, readFile, readdir, statfs } from 'node:fs/promises';
import os from 'node:os';
import { discoveryToolEnv } from './tool-env.js';
import { exec, hasTool } from '../../platform/exec.js';
import { mapLimit } from '../../platform/map-limit.js';
import { errorMessage } from '../../errors/ferry-error.js';
import { parseBlkidExport } from './blkid.js';
import { BOOT_LOADER_FILES } from './host.js';
import { parseMountinfo } from './mountinfo.js';
import { lvFirstExtents, mapperName, parseLvs, type LvLocation } from './lvm.js';
import type { BtrfsProbe, LinuxSnapshot, NicProbe, StatfsInfo, SysBlockDevice, SysPartition, ToolOutput } from './snapshot.js';

export interface CollectOptions {
  includeLoop?: boolean;
  /** Root of sysfs (tests may point elsewhere). Default /sys. */
  sys?: string;
  /** Per-command timeout in ms. Default 15 s. */
  timeoutMs?: number;
}

const DISK_NAME = /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+|nvme\d+n\d+|mmcblk\d+)$/;
const LOOP_NAME = /^loop\d+$/;
const MD_NAME = /^md\d+$/;

/** Whether a /sys/block name is a whole disk discovery reports (not a partition, mmcblk0boot0, zram, dm, md, sr). */
export function isWholeDiskName(name: string, includeLoop = false): boolean {
  return DISK_NAME.test(name) || (includeLoop && LOOP_NAME.test(name));
}

const readText = async (p: string): Promise<string | undefined> => {
  try {
    return (await readFile(p, 'utf8')).trim();
  } catch {
    return undefined;
  }
};
const readNum = async (p: string): Promise<number> => Number(await readText(p)) || 0;
const list = async (p: string): Promise<string[]> => {
  try {
    return (await readdir(p)).sort();
  } catch {
    return [];
  }
};

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function readHead(device: string, bytes: number, timeoutMs: number, position = 0): Promise<Buffer> {
  return withTimeout(
    (async () => {
      const fh = await open(device, 'r');
      try {
        const buf = Buffer.alloc(bytes);
        const { bytesRead } = await fh.read(buf, 0, bytes, position);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    })(),
    timeoutMs,
    `reading ${device}`,
  );
}

async function tool(file: string, args: string[], timeoutMs: number, okCodes = [0]): Promise<ToolOutput> {
  try {
    const r = await exec(file, args, {
      timeoutMs,
      okCodes,
      env: discoveryToolEnv(),
    });
    // blkid exits 2 both for "nothing found" (silent) and for "cannot open" (says why on stderr).
    if (r.exitCode !== 0 && r.stdout === '' && /error/i.test(r.stderr)) return { ok: false, error: r.stderr.trim().split('\n')[0]! };
    return { ok: true, stdout: r.stdout };
  } catch (err) {
    return { ok: false, error: errorMessage(err) };
  }
}


async function sysBlockDevice(sys: string, name: string, timeoutMs: number, warnings: string[]): Promise<SysBlockDevice | undefined> {
  const dir = `${sys}/block/${name}`;
  const sizeSectors = await readNum(`${dir}/size`);
  if (sizeSectors === 0) return undefined; // empty card reader, detached loop
  const logicalBlockSize = (await readNum(`${dir}/queue/logical_block_size`)) || 512;
  const partitions: SysPartition[] = [];
  for (const entry of await list(dir)) {
    if (!entry.startsWith(name)) continue;
    const number = await readNum(`${dir}/${entry}/partition`);
    if (number === 0) continue;
    partitions.push({
      name: entry,
      dev: (await readText(`${dir}/${entry}/dev`)) ?? '',
      number,
      startSectors: await readNum(`${dir}/${entry}/start`),
      sizeSectors: await readNum(`${dir}/${entry}/size`),
    });
  }
  let head: string | null = null;
  try {
    head = (await readHead(`/dev/${name}`, logicalBlockSize * 2, timeoutMs)).toString('hex');
  } catch (err) {
    warnings.push(`/dev/${name}: cannot read its first sectors (partition style unknown): ${errorMessage(err)}`);
  }
  const dev: SysBlockDevice = {
    name,
    dev: (await readText(`${dir}/dev`)) ?? '',
    sizeSectors,
    logicalBlockSize,
    removable: (await readNum(`${dir}/removable`)) === 1,
    readOnly: (await readNum(`${dir}/ro`)) === 1,
    partitions,
    holders: await list(`${dir}/holders`),
    head,
  };
  if (LOOP_NAME.test(name)) dev.loopBackingFile = (await readText(`${dir}/loop/backing_file`)) ?? '';
  return dev;
}

/** On-disk inode size from an ext2/3/4 or XFS superblock; 0 when neither. */
export function inodeSizeFromSuperblock(head: Buffer): number {
  if (head.length >= 1024 + 90 && head.readUInt16LE(1024 + 56) === 0xef53) {
    return head.readUInt32LE(1024 + 76) === 0 ? 128 : head.readUInt16LE(1024 + 88);
  }
  if (head.length >= 106 && head.toString('latin1', 0, 4) === 'XFSB') return head.readUInt16BE(104);
  return 0;
}

export async function collectLinuxSnapshot(options: CollectOptions = {}): Promise<LinuxSnapshot> {
  const sys = options.sys ?? '/sys';
  const timeoutMs = options.timeoutMs ?? 15_000;
  const warnings: string[] = [];
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  if (uid !== 0) warnings.push(`running as uid ${uid}, not root: disks, blkid and LVM may be unreadable; run as root for a complete inventory`);

  // ---- block devices
  const names = (await list(`${sys}/block`)).filter((n) => isWholeDiskName(n, options.includeLoop === true));
  const blockDevices = (await mapLimit(names, 4, (n) => sysBlockDevice(sys, n, timeoutMs, warnings))).filter(
    (d): d is SysBlockDevice => d !== undefined && (d.loopBackingFile === undefined || d.loopBackingFile !== ''),
  );
  const mdArrays: LinuxSnapshot['mdArrays'] = [];
  for (const n of (await list(`${sys}/block`)).filter((x) => MD_NAME.test(x))) {
    mdArrays.push({
      name: n,
      dev: (await readText(`${sys}/block/${n}/dev`)) ?? '',
      level: (await readText(`${sys}/block/${n}/md/level`)) ?? '',
      members: await list(`${sys}/block/${n}/slaves`),
    });
  }

  // ---- blkid on every disk, partition and md array
  const probePaths = [
    ...blockDevices.flatMap((d) => [`/dev/${d.name}`, ...d.partitions.map((p) => `/dev/${p.name}`)]),
    ...mdArrays.map((m) => `/dev/${m.name}`),
  ];
  const blkid: Record<string, ToolOutput> = {};
  if (!(await hasTool('blkid'))) {
    warnings.push('blkid not installed (util-linux): file system types and UUIDs left empty');
  } else {
    // exit code 2: nothing recognised on the device
    const outs = await mapLimit(probePaths, 4, (p) => tool('blkid', ['-p', '-o', 'export', p], timeoutMs, [0, 2]));
    probePaths.forEach((p, i) => {
      blkid[p] = outs[i]!;
      if (!outs[i]!.ok) warnings.push(`blkid ${p}: ${(outs[i] as { error: string }).error}`);
    });
  }
  const fsTypeOf = (p: string) => {
    const o = blkid[p];
    return o?.ok ? (parseBlkidExport(o.stdout).TYPE ?? '') : '';
  };

  // ---- mounts and usage
  const mountinfo = (await readText('/proc/self/mountinfo')) ?? '';
  if (mountinfo === '') warnings.push('/proc/self/mountinfo unreadable: mount points and usage left empty');
  const mounts = parseMountinfo(mountinfo);
  const statfsOut: Record<string, StatfsInfo> = {};
  for (const m of mounts) {
    if (!m.source.startsWith('/dev/') || statfsOut[m.mountPoint]) continue;
    try {
      const s = await withTimeout(statfs(m.mountPoint), timeoutMs, `statfs ${m.mountPoint}`);
      statfsOut[m.mountPoint] = { bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
    } catch (err) {
      warnings.push(`statfs ${m.mountPoint}: ${errorMessage(err)}`);
    }
  }

  // ---- inode sizes from superblocks
  const inodeSizes: Record<string, number> = {};
  const readInodeSize = async (key: string, device: string, offset: number): Promise<void> => {
    if (!/^(ext[234]|xfs)$/.test(fsTypeOf(key))) return;
    try {
      const n = inodeSizeFromSuperblock(await readHead(device, 2048, timeoutMs, offset));
      if (n > 0) inodeSizes[key] = n;
    } catch {
      /* the inode size is a nicety; usage comes from statfs */
    }
  };
  for (const p of probePaths) await readInodeSize(p, p, 0);

  // ---- LVM
  const lvmTool = async (cmd: string, fields: string, extra: string[] = []): Promise<ToolOutput> =>
    tool(cmd, [...extra, '--reportformat', 'json', '--units', 'b', '-o', fields], timeoutMs);
  let lvm: LinuxSnapshot['lvm'];
  if (!(await hasTool('pvs'))) {
    const missing: ToolOutput = { ok: false, error: 'pvs: not installed (lvm2)' };
    lvm = { pvs: missing, vgs: missing, lvs: missing };
  } else {
    lvm = {
      pvs: await lvmTool('pvs', 'pv_name,vg_name,pv_size,pv_free,pe_start'),
      vgs: await lvmTool('vgs', 'vg_name,vg_size,vg_free,vg_extent_size'),
      lvs: await lvmTool('lvs', 'lv_name,vg_name,lv_size,lv_path,lv_dm_path,lv_active'),
    };
    // Probe the file system of every LV: through its device node when active,
    // else at its first extent on the PV (no device-mapper node to open).
    try {
      const lvRows = lvm.lvs.ok ? parseLvs(lvm.lvs.stdout) : [];
      const inactive = lvRows.filter((lv) => lv.lv_active !== 'active');
      let located = new Map<string, LvLocation>();
      if (inactive.length > 0 && lvm.pvs.ok && lvm.vgs.ok) {
        lvm.segments = await lvmTool('lvs', 'lv_name,vg_name,lv_dm_path,seg_start_pe,seg_pe_ranges,segtype,seg_size', ['--segments']);
        if (lvm.segments.ok) located = lvFirstExtents(lvm.segments.stdout, lvm.pvs.stdout, lvm.vgs.stdout);
      }
      for (const lv of lvRows) {
        const name = lv.lv_dm_path || mapperName(lv.vg_name, lv.lv_name);
        if (lv.lv_active === 'active' && existsSync(name)) {
          blkid[name] = await tool('blkid', ['-p', '-o', 'export', name], timeoutMs, [0, 2]);
          await readInodeSize(name, name, 0);
          continue;
        }
        const at = located.get(name);
        if (!at) continue;
        blkid[name] = await tool('blkid', ['-p', '-O', String(at.offset), '-S', String(at.size), '-o', 'export', at.pv], timeoutMs, [0, 2]);
        await readInodeSize(name, at.pv, at.offset);
      }
    } catch (err) {
      warnings.push(`LVM: could not probe logical volumes: ${errorMessage(err).slice(0, 200)}`);
    }
  }

  // ---- Btrfs: one probe per file system (grouped by UUID)
  const btrfs: BtrfsProbe[] = [];
  const btrfsDevices = new Map<string, string[]>();
  for (const p of probePaths) {
    const o = blkid[p];
    if (!o?.ok) continue;
    const id = parseBlkidExport(o.stdout);
    if (id.TYPE !== 'btrfs') continue;
    const uuid = id.UUID ?? p;
    btrfsDevices.set(uuid, [...(btrfsDevices.get(uuid) ?? []), p]);
  }
  const haveBtrfs = await hasTool('btrfs');
  if (!haveBtrfs) warnings.push('btrfs not installed (btrfs-progs): btrfs_list left empty');
  if (haveBtrfs) {
    for (const devices of btrfsDevices.values()) {
      const device = devices[0]!;
      const probe: BtrfsProbe = {
        device,
        show: await tool('btrfs', ['filesystem', 'show', '--raw', device], timeoutMs),
        dumpSuper: await tool('btrfs', ['inspect-internal', 'dump-super', device], timeoutMs),
      };
      const fsMounts = mounts.filter((m) => m.fsType === 'btrfs' && devices.includes(m.source)).sort((a, b) => a.mountPoint.length - b.mountPoint.length);
      const mnt = fsMounts[0]?.mountPoint;
      if (mnt !== undefined) {
        probe.mountPoint = mnt;
        probe.df = await tool('btrfs', ['filesystem', 'df', '-b', mnt], timeoutMs);
        probe.subvolumeList = await tool('btrfs', ['subvolume', 'list', '-p', '-u', '-q', mnt], timeoutMs);
        probe.getDefault = await tool('btrfs', ['subvolume', 'get-default', mnt], timeoutMs);
      }
      btrfs.push(probe);
    }
  }

  // ---- NICs
  const ifaddrs = os.networkInterfaces();
  const nics: NicProbe[] = [];
  for (const name of await list(`${sys}/class/net`)) {
    const dir = `${sys}/class/net/${name}`;
    nics.push({
      name,
      mtu: await readNum(`${dir}/mtu`),
      mac: (await readText(`${dir}/address`)) ?? '',
      type: await readNum(`${dir}/type`),
      addresses: (ifaddrs[name] ?? []).map((a) => ({ family: a.family, address: a.address, netmask: a.netmask, internal: a.internal })),
    });
  }

  // ---- host
  const dmi: Record<string, string> = {};
  for (const k of ['sys_vendor', 'product_name', 'product_version', 'bios_vendor', 'bios_version', 'board_vendor', 'chassis_vendor', 'chassis_asset_tag']) {
    const v = await readText(`${sys}/class/dmi/id/${k}`);
    if (v !== undefined && v !== '') dmi[k] = v;
  }
  const cpuinfo = (await readText('/proc/cpuinfo')) ?? '';
  const paravirtBuses: string[] = [];
  for (const bus of ['virtio', 'xen', 'vmbus']) if ((await list(`${sys}/bus/${bus}/devices`)).length > 0) paravirtBuses.push(bus);
  const rawDevices = (await list('/dev/raw')).filter((n) => n !== 'rawctl');
  const kernelRelease = (await readText('/proc/sys/kernel/osrelease')) ?? os.release();

  return {
    blockDevices,
    mdArrays,
    blkid,
    mountinfo,
    statfs: statfsOut,
    inodeSizes,
    lvm,
    btrfs,
    nics,
    route: (await readText('/proc/net/route')) ?? '',
    ipv6Route: (await readText('/proc/net/ipv6_route')) ?? '',
    host: {
      hostname: os.hostname(),
      osRelease: (await readText('/etc/os-release')) ?? (await readText('/usr/lib/os-release')) ?? '',
      kernelRelease,
      arch: os.machine(),
      efi: existsSync(`${sys}/firmware/efi`),
      dmi,
      hypervisorType: (await readText(`${sys}/hypervisor/type`)) ?? '',
      cpuHypervisorFlag: /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo),
      paravirtBuses,
      cpuCount: os.cpus().length,
      memoryBytes: os.totalmem(),
      bootFiles: BOOT_LOADER_FILES.filter((f) => existsSync(f)),
      hasRsync: await hasTool('rsync'),
      hasTc: await hasTool('tc'),
      rawDevices,
      diskstats: (await readText('/proc/diskstats')) ?? '',
    },
    warnings,
  };
}
