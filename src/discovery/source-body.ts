// Inventory → the body of POST /v3/sources (tables 4-8 to 4-15). The only
// place that knows the API's field names; strings are cut to the documented
// lengths so a long mount path never makes a whole registration fail.

import { agentVersion } from '../version.js';
import type { SourceBody } from '../sms/schemas/source.js';
import type { Inventory } from './model.js';

const cut = (s: string, max = 255) => (s.length > max ? s.slice(0, max) : s);
const INT32_MAX = 2_147_483_647;
const int32 = (n: number) => Math.min(INT32_MAX, Math.max(0, Math.trunc(n)));

export function toSourceBody(inv: Inventory): SourceBody {
  const h = inv.host;
  const body: SourceBody = {
    ip: cut(h.ip),
    name: cut(h.hostname),
    hostname: cut(h.hostname),
    os_type: h.osType,
    os_version: cut(h.osVersion),
    kernel_version: cut(h.kernelVersion),
    virtualization_type: cut(h.virtualizationType),
    firmware: h.firmware,
    cpu_quantity: Math.min(65_535, h.cpuCount),
    memory: h.memoryBytes,
    paravirtualization: h.paravirtualization,
    platform: h.platform,
    agent_version: agentVersion(),
    disks: inv.disks.map((d) => ({
      name: cut(d.name),
      // A disk without a partition table is reported as MBR, as the API example does for a whole-disk PV.
      partition_style: d.partitionTable === 'gpt' ? 'GPT' : 'MBR',
      device_use: d.use,
      size: d.sizeBytes,
      used_size: d.usedBytes,
      os_disk: d.osDisk,
      physical_volumes: d.partitions.map((p) => ({
        name: cut(p.name),
        index: p.index,
        size: p.sizeBytes,
        used_size: p.usedBytes,
        device_use: p.use,
        file_system: cut(p.fsType),
        uuid: cut(p.uuid),
        mount_point: cut(p.mountPoint),
        inode_size: int32(p.inodeSize),
        inode_nums: p.inodesUsed,
        ...(p.clusterSize !== undefined ? { size_per_cluster: int32(p.clusterSize) } : {}),
      })),
    })),
    networks: inv.nics.map((n) => ({
      name: cut(n.name),
      ip: cut(n.ipv4),
      ipv6: cut(n.ipv6),
      netmask: cut(n.netmask),
      gateway: cut(n.gateway),
      mtu: int32(n.mtu),
      mac: cut(n.mac),
    })),
  };
  if (h.osType === 'LINUX') {
    Object.assign(body, {
      linux_block_check: cut(h.linuxBlockCheck ?? ''),
      boot_loader: h.bootLoader,
      has_rsync: h.hasRsync ?? false,
      has_tc: h.hasTc ?? false,
      raw_devices: cut(h.rawDevices ?? ''),
      io_read_wait: h.ioReadWait ?? 0,
      volume_groups: inv.volumeGroups.map((vg) => ({
        name: cut(vg.name),
        size: vg.sizeBytes,
        free_size: vg.freeBytes,
        components: cut(vg.pvs.join(';')),
        logical_volumes: vg.lvs.slice(0, 255).map((lv) => ({
          name: cut(lv.name, 1024),
          size: lv.sizeBytes,
          used_size: lv.usedBytes,
          free_size: lv.freeBytes,
          file_system: cut(lv.fsType),
          mount_point: cut(lv.mountPoint, 256),
          device_use: lv.use,
          inode_size: int32(lv.inodeSize),
          inode_nums: lv.inodesUsed,
          block_size: lv.blockSize,
          block_count: int32(lv.blockCount),
        })),
      })),
      btrfs_list: inv.btrfs.map((b) => ({
        name: cut(b.devices[0] ?? ''),
        label: cut(b.label),
        uuid: cut(b.uuid),
        device: cut(b.devices.join(';')),
        size: b.totalBytes,
        nodesize: b.nodeSize,
        sectorsize: int32(b.sectorSize),
        data_profile: cut(b.dataProfile),
        system_profile: cut(b.systemProfile),
        metadata_profile: cut(b.metadataProfile),
        global_reserve1: cut(b.globalReserveProfile),
        g_vol_used_size: b.usedBytes,
        default_subvolid: cut(b.defaultSubvolId),
        default_subvol_name: cut(b.defaultSubvolName),
        default_subvol_mountpath: cut(
          b.subvolumes.find((s) => s.id === b.defaultSubvolId)?.mountPoint || (b.defaultSubvolId === '5' ? b.mountPoint : '') || b.mountPoint,
        ),
        subvolumn: b.subvolumes.map((s) => ({
          uuid: cut(b.uuid),
          is_snapshot: s.isSnapshot ? 'true' : 'false',
          subvol_id: cut(s.id),
          parent_id: cut(s.parentId),
          subvol_name: cut(s.path),
          // The API example writes the string "null" for an unmounted subvolume.
          subvol_mount_path: cut(s.mountPoint || 'null'),
        })),
      })),
    } satisfies Partial<SourceBody>);
  } else {
    Object.assign(body, {
      system_dir: cut(h.systemDir ?? ''),
      driver_files: h.driverFilesOk ?? false,
      system_services: h.systemServicesOk ?? false,
      account_rights: h.accountRightsOk ?? false,
    } satisfies Partial<SourceBody>);
  }
  return body;
}
