// The Linux parsers on tool outputs recorded on this VM (btrfs-progs 6.2,
// lvm2 2.03, util-linux 2.38) and on hand-made sectors.

import { describe, expect, it } from 'vitest';
import { detectPartitionTable } from '../../../src/discovery/linux/partition-table.js';
import { parseBlkidExport, rawFromEscaped, splitBlkidExport } from '../../../src/discovery/linux/blkid.js';
import { mountOption, parseMountinfo } from '../../../src/discovery/linux/mountinfo.js';
import { mapperName, parseLvs, parsePvs, parseVgs } from '../../../src/discovery/linux/lvm.js';
import { parseDumpSuper, parseFilesystemDf, parseFilesystemShow, parseGetDefault, parseSubvolumeList } from '../../../src/discovery/linux/btrfs.js';
import { parseIpv4DefaultGateways, parseIpv6DefaultGateways } from '../../../src/discovery/linux/network.js';
import { averageReadWaitMs, detectBootLoader, detectPlatform, osVersionName, parseOsRelease, virtualizationType } from '../../../src/discovery/linux/host.js';
import { inodeSizeFromSuperblock, isWholeDiskName } from '../../../src/discovery/linux/collect.js';

function mbr(entries: { status?: number; type: number }[]): Buffer {
  const b = Buffer.alloc(1024);
  entries.forEach((e, i) => {
    b[446 + i * 16] = e.status ?? 0;
    b[446 + i * 16 + 4] = e.type;
  });
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

describe('partition table from LBA0/LBA1', () => {
  it('finds GPT by its header at LBA1, for 512 and 4096-byte sectors', () => {
    const b = mbr([{ type: 0xee }]);
    b.write('EFI PART', 512, 'latin1');
    expect(detectPartitionTable(b, 512)).toBe('gpt');
    const big = Buffer.alloc(8192);
    big.write('EFI PART', 4096, 'latin1');
    expect(detectPartitionTable(big, 4096)).toBe('gpt');
  });
  it('finds MBR by its signature and sane entries', () => {
    expect(detectPartitionTable(mbr([{ status: 0x80, type: 0x83 }, { type: 0x82 }]), 512)).toBe('mbr');
    expect(detectPartitionTable(mbr([]), 512)).toBe('mbr'); // an empty DOS label
  });
  it('calls a protective MBR without a header a (damaged) GPT', () => {
    expect(detectPartitionTable(mbr([{ type: 0xee }]), 512)).toBe('gpt');
  });
  it('does not take a file system boot sector or zeros for a table', () => {
    expect(detectPartitionTable(Buffer.alloc(1024), 512)).toBe('none');
    const fat = mbr([]);
    fat[446] = 0x33; // boot code where entries would be
    expect(detectPartitionTable(fat, 512)).toBe('none');
    expect(detectPartitionTable(mbr([]), 512, 'vfat')).toBe('none');
    expect(detectPartitionTable(null, 512)).toBe('unknown');
  });
});

describe('whole-disk names', () => {
  it('keeps disks, drops partitions and pseudo devices', () => {
    for (const n of ['sda', 'sdaa', 'vda', 'xvdf', 'nvme0n1', 'nvme12n3', 'mmcblk0', 'hda']) expect(isWholeDiskName(n), n).toBe(true);
    for (const n of ['sda1', 'nvme0n1p1', 'nvme0', 'mmcblk0p1', 'mmcblk0boot0', 'mmcblk0rpmb', 'zram0', 'dm-0', 'md0', 'sr0', 'loop0', 'ram0'])
      expect(isWholeDiskName(n), n).toBe(false);
    expect(isWholeDiskName('loop3', true)).toBe(true);
    expect(isWholeDiskName('loop3p1', true)).toBe(false);
  });
});

describe('blkid -o export', () => {
  it('reads keys and unescapes values', () => {
    const out = parseBlkidExport('DEVNAME=/dev/loop0p2\nUUID=yWDCcj-y8ax-1lud-01hM-mW8P-e5ie-b0iYSS\nVERSION=LVM2\\ 001\nTYPE=LVM2_member\nUSAGE=raid\n');
    expect(out).toMatchObject({ TYPE: 'LVM2_member', VERSION: 'LVM2 001', UUID: 'yWDCcj-y8ax-1lud-01hM-mW8P-e5ie-b0iYSS' });
    expect(parseBlkidExport('')).toEqual({});
  });

  it('with -d (raw), a label is its bytes as they are: UTF-8, spaces and backslashes unescaped by blkid, kept', () => {
    // Recorded: an ext4 made with -L 'Données-systèm', then with -L 'a b\\c'; without -d blkid prints LABEL=DonnM-CM-)es-systM-CM-(m.
    expect(parseBlkidExport('LABEL=Données-systèm\nTYPE=ext4\n', { raw: true })).toEqual({ LABEL: 'Données-systèm', TYPE: 'ext4' });
    expect(parseBlkidExport('LABEL=a b\\c\n', { raw: true }).LABEL).toBe('a b\\c');
    expect(Buffer.byteLength(parseBlkidExport('LABEL=Données-systèm\n', { raw: true }).LABEL!)).toBe(16);
  });

  // Recorded (util-linux 2.38): `blkid -p -o export /dev/loop2p1 /dev/loop2p3 /dev/nonexist /dev/loop3p3`
  // (exit 0: the missing node skipped), shortened; then each device alone with -d.
  const several =
    'DEVNAME=/dev/loop2p1\nPART_ENTRY_SCHEME=gpt\nPART_ENTRY_NAME=BIOS\\ boot\nPART_ENTRY_NUMBER=1\n\n' +
    'DEVNAME=/dev/loop2p3\nLABEL=boot\nUUID=32f9da7a-e19f-4951-8bda-6ce6686114be\nTYPE=ext4\nUSAGE=filesystem\nPART_ENTRY_NUMBER=3\n\n' +
    'DEVNAME=/dev/loop3p3\nUUID=2C8K8Z-kP2f-rUgI-6DT0-6VC6-9AqM-oN3vGN\nVERSION=LVM2\\ 001\nTYPE=LVM2_member\nUSAGE=raid\n';
  const alone: Record<string, string> = {
    '/dev/loop2p1': 'DEVNAME=/dev/loop2p1\nPART_ENTRY_SCHEME=gpt\nPART_ENTRY_NAME=BIOS boot\nPART_ENTRY_NUMBER=1\n',
    '/dev/loop2p3': 'DEVNAME=/dev/loop2p3\nLABEL=boot\nUUID=32f9da7a-e19f-4951-8bda-6ce6686114be\nTYPE=ext4\nUSAGE=filesystem\nPART_ENTRY_NUMBER=3\n',
    '/dev/loop3p3': 'DEVNAME=/dev/loop3p3\nUUID=2C8K8Z-kP2f-rUgI-6DT0-6VC6-9AqM-oN3vGN\nVERSION=LVM2 001\nTYPE=LVM2_member\nUSAGE=raid\n',
  };
  const devs = ['/dev/loop2p1', '/dev/loop2p3', '/dev/nonexist', '/dev/loop3p3'];

  it('several devices in one call: each block by its DEVNAME, read as that device alone with -d reads', () => {
    const got = splitBlkidExport(several, devs);
    expect([...got.keys()]).toEqual(['/dev/loop2p1', '/dev/loop2p3', '/dev/loop3p3']);
    for (const dev of ['/dev/loop2p1', '/dev/loop2p3']) expect(parseBlkidExport(rawFromEscaped(got.get(dev)!)!, { raw: true })).toEqual(parseBlkidExport(alone[dev]!, { raw: true }));
    // The PV's UUID holds "M-" (…-9AqM-oN3vGN), which could be blkid's escape of a byte above 127: probed alone.
    expect(rawFromEscaped(got.get('/dev/loop3p3')!)).toBeUndefined();
    expect(parseBlkidExport(rawFromEscaped(got.get('/dev/loop3p3')!.replace('9AqM-', '9Aq-'))!, { raw: true }).VERSION).toBe('LVM2 001');
  });

  it('blkid stopped at a device where it found nothing (exit 2): only what it printed', () => {
    // Recorded: `blkid -p /dev/loop2p3 /dev/loop9 /dev/loop2p2` with loop9 blank printed loop2p3 alone and exited 2.
    const got = splitBlkidExport(several.split('\n\n')[1]!, ['/dev/loop2p3', '/dev/loop9', '/dev/loop2p2']);
    expect([...got.keys()]).toEqual(['/dev/loop2p3']);
    expect(splitBlkidExport('', devs).size).toBe(0);
  });

  it('a DEVNAME out of order, unknown or repeated, or text before the first, trusts no block', () => {
    expect(splitBlkidExport(several, ['/dev/loop2p3', '/dev/loop2p1', '/dev/loop3p3']).size).toBe(0);
    expect(splitBlkidExport(several.replace('DEVNAME=/dev/loop3p3', 'DEVNAME=/dev/sdz9'), devs).size).toBe(0);
    expect(splitBlkidExport(`${several}\nDEVNAME=/dev/loop2p3\nTYPE=swap\n`, devs).size).toBe(0);
    expect(splitBlkidExport(`TYPE=ext4\n${several}`, devs).size).toBe(0);
  });

  it('a value the escaping leaves unsure (^X, M-x: a control byte, a byte above 127, or those characters themselves) is probed alone', () => {
    // Recorded: an ext4 labelled "x\ny" shows LABEL=x^Jy escaped; "Données" shows LABEL=DonnM-CM-)es.
    expect(rawFromEscaped('DEVNAME=/dev/a\nLABEL=x^Jy\nTYPE=ext4\n')).toBeUndefined();
    expect(rawFromEscaped('DEVNAME=/dev/a\nLABEL=DonnM-CM-)es\n')).toBeUndefined();
    // Shell specials come back as their bytes (recorded: 'a b' -> a\ b, 'a\b' -> a\\b, 'd$z' -> d\$z).
    expect(parseBlkidExport(rawFromEscaped('LABEL=a\\ b\\\\c\\$z\\"q\\\'r\n')!, { raw: true }).LABEL).toBe('a b\\c$z"q\'r');
  });
});

describe('mountinfo', () => {
  it('reads root, mount point, type, source and options, with octal escapes', () => {
    const m = parseMountinfo(
      '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n' +
        '44 27 0:39 /sub1 /mnt/my\\040disk rw,relatime shared:5 - btrfs /dev/loop0 rw,space_cache=v2,subvolid=256,subvol=/sub1\n',
    );
    expect(m[0]).toMatchObject({ majorMinor: '254:0', root: '/', mountPoint: '/', fsType: 'ext4', source: '/dev/vda' });
    expect(m[1]).toMatchObject({ root: '/sub1', mountPoint: '/mnt/my disk', fsType: 'btrfs', source: '/dev/loop0' });
    expect(mountOption(m[1]!.superOptions, 'subvolid')).toBe('256');
    expect(mountOption(m[1]!.superOptions, 'nope')).toBeUndefined();
  });
});

describe('LVM JSON reports', () => {
  const pvs = `  {
      "report": [
          {
              "pv": [
                  {"pv_name":"/dev/loop0p2", "vg_name":"ferrytmpvg", "pv_size":"16777216B", "pv_free":"8388608B"},
                  {"pv_name":"/dev/loop3", "vg_name":"", "pv_size":"20971520B", "pv_free":"20971520B"}
              ]
          }
      ]
  }`;
  it('reads pvs, vgs and lvs with byte sizes', () => {
    expect(parsePvs(pvs)).toEqual([
      { pv_name: '/dev/loop0p2', vg_name: 'ferrytmpvg', pv_size: 16777216, pv_free: 8388608 },
      { pv_name: '/dev/loop3', vg_name: '', pv_size: 20971520, pv_free: 20971520 },
    ]);
    expect(parseVgs('{"report":[{"vg":[{"vg_name":"v","vg_size":"16777216B","vg_free":"0B"}]}]}')).toEqual([{ vg_name: 'v', vg_size: 16777216, vg_free: 0 }]);
    const lvs = parseLvs(
      '{"report":[{"lv":[{"lv_name":"lva", "vg_name":"ferrytmpvg", "lv_size":"8388608B", "lv_path":"/dev/ferrytmpvg/lva", "lv_dm_path":"/dev/mapper/ferrytmpvg-lva", "lv_active":""}]}]}',
    );
    expect(lvs[0]).toMatchObject({ lv_size: 8388608, lv_active: '' });
  });
  it('rejects a report that is not one', () => {
    expect(() => parseVgs('{"report":[{"vg":[{"vg_name":"v","vg_size":"1.5g","vg_free":"0B"}]}]}')).toThrow(/byte count/);
    expect(() => parsePvs('not json')).toThrow();
  });
  it('builds /dev/mapper names with doubled dashes', () => {
    expect(mapperName('my-vg', 'logs-1')).toBe('/dev/mapper/my--vg-logs--1');
  });
});

describe('btrfs-progs outputs', () => {
  it('filesystem show --raw', () => {
    const s = parseFilesystemShow(
      "Label: 'mylab'  uuid: 163571bb-1dfe-4269-a844-e2dc1491d045\n\tTotal devices 1 FS bytes used 212992\n\tdevid    1 size 314572800 used 92274688 path /dev/loop0\n\n" +
        'Label: none  uuid: 2b0f8f0c-1111-4222-8333-944445555666\n\tTotal devices 2 FS bytes used 1\n\tdevid    1 size 100 used 1 path /dev/sdb\n\tdevid    2 size 200 used 1 path /dev/sdc\n',
    );
    expect(s).toEqual([
      { label: 'mylab', uuid: '163571bb-1dfe-4269-a844-e2dc1491d045', devices: [{ devid: 1, sizeBytes: 314572800, path: '/dev/loop0' }] },
      {
        label: '',
        uuid: '2b0f8f0c-1111-4222-8333-944445555666',
        devices: [
          { devid: 1, sizeBytes: 100, path: '/dev/sdb' },
          { devid: 2, sizeBytes: 200, path: '/dev/sdc' },
        ],
      },
    ]);
  });
  it('filesystem df -b', () => {
    expect(
      parseFilesystemDf(
        'Data, single: total=8388608, used=0\nSystem, DUP: total=8388608, used=16384\nMetadata, DUP: total=33554432, used=180224\nGlobalReserve, single: total=5767168, used=16384\n',
      ),
    ).toEqual({ data: 'single', system: 'DUP', metadata: 'DUP', globalReserve: 'single' });
  });
  it('subvolume list -p -u -q, snapshots by parent_uuid', () => {
    const l = parseSubvolumeList(
      'ID 256 gen 7 parent 5 top level 5 parent_uuid -                                    uuid db3b2af5-3782-bb45-b463-434e2b367d04 path sub1\n' +
        'ID 257 gen 7 parent 256 top level 256 parent_uuid -                                    uuid 10a4cdb9-c258-ce4a-a82c-faafca10dd24 path sub1/nested\n' +
        'ID 258 gen 7 parent 5 top level 5 parent_uuid db3b2af5-3782-bb45-b463-434e2b367d04 uuid e17b34a8-c562-9f43-b87f-6797542bff3e path snap 1\n',
    );
    expect(l.map((s) => [s.id, s.parentId, s.parentUuid, s.uuid, s.path])).toEqual([
      ['256', '5', '-', 'db3b2af5-3782-bb45-b463-434e2b367d04', 'sub1'],
      ['257', '256', '-', '10a4cdb9-c258-ce4a-a82c-faafca10dd24', 'sub1/nested'],
      ['258', '5', 'db3b2af5-3782-bb45-b463-434e2b367d04', 'e17b34a8-c562-9f43-b87f-6797542bff3e', 'snap 1'],
    ]);
  });
  it('subvolume get-default', () => {
    expect(parseGetDefault('ID 5 (FS_TREE)\n')).toEqual({ id: '5', name: 'FS_TREE' });
    expect(parseGetDefault('ID 256 gen 7 top level 5 path sub1\n')).toEqual({ id: '256', name: 'sub1' });
  });
  it('inspect-internal dump-super', () => {
    const s = parseDumpSuper(
      'superblock: bytenr=65536, device=/dev/loop0\n---------\ncsum_type\t\t0 (crc32c)\nfsid\t\t\t163571bb-1dfe-4269-a844-e2dc1491d045\nlabel\t\t\tmylab\ntotal_bytes\t\t314572800\nbytes_used\t\t196608\nsectorsize\t\t4096\nnodesize\t\t16384\nnum_devices\t\t1\ndev_item.total_bytes\t314572800\n',
    );
    expect(s).toEqual({ fsid: '163571bb-1dfe-4269-a844-e2dc1491d045', label: 'mylab', totalBytes: 314572800, bytesUsed: 196608, sectorSize: 4096, nodeSize: 16384, numDevices: 1 });
  });
});

describe('routes', () => {
  it('IPv4 default gateway per interface, lowest metric first', () => {
    const t =
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n' +
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
      'eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n' +
      'eth1\t00000000\t0201A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n';
    const g = parseIpv4DefaultGateways(t);
    expect(g.get('eth0')).toBe('192.0.2.1');
    expect(g.get('eth1')).toBe('192.168.1.2');
  });
  it('IPv6 default gateway, compressed', () => {
    const g = parseIpv6DefaultGateways(
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n' +
        'fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n',
    );
    expect(g.get('eth0')).toBe('fe80::1');
  });
});

describe('host facts', () => {
  it('names OS versions the SMS way', () => {
    const v = (t: string, arch = 'x86_64') => osVersionName(parseOsRelease(t), arch);
    expect(v('ID=debian\nVERSION_ID="12"')).toBe('DEBIAN12_64BIT');
    expect(v('ID=ubuntu\nVERSION_ID="22.04"')).toBe('UBUNTU22_04_64BIT');
    expect(v('ID="centos"\nVERSION_ID="7"')).toBe('CENTOS7_64BIT');
    expect(v('ID="sles"\nVERSION_ID="12.2"')).toBe('SUSE12_64BIT_SP2');
    expect(v('ID="sles"\nVERSION_ID="15"')).toBe('SUSE15_64BIT');
    expect(v('ID=opensuse-leap\nVERSION_ID="15.5"')).toBe('OPENSUSELEAP15_5_64BIT');
    expect(v('ID=alpine\nVERSION_ID=3.19.1', 'i686')).toBe('ALPINE3_19_1_32BIT');
  });
  it('recognises clouds and hypervisors from DMI', () => {
    expect(detectPlatform({ sys_vendor: 'OpenStack Foundation', product_name: 'OpenStack Nova', chassis_asset_tag: 'HUAWEICLOUD' })).toBe('hw');
    expect(detectPlatform({ sys_vendor: 'Alibaba Cloud', product_name: 'Alibaba Cloud ECS' })).toBe('ali');
    expect(detectPlatform({ sys_vendor: 'Amazon EC2', product_name: 'm6i.large' })).toBe('aws');
    expect(detectPlatform({ sys_vendor: 'Xen', product_name: 'HVM domU', bios_version: '4.11.amazon' })).toBe('aws');
    expect(detectPlatform({ sys_vendor: 'Google', product_name: 'Google Compute Engine' })).toBe('gcp');
    expect(detectPlatform({ sys_vendor: 'Tencent Cloud', product_name: 'CVM' })).toBe('tencent');
    expect(detectPlatform({ sys_vendor: 'Microsoft Corporation', product_name: 'Virtual Machine', chassis_asset_tag: '7783-7084-3265-9085-8269-3286-77' })).toBe('azure');
    expect(detectPlatform({ sys_vendor: 'Microsoft Corporation', product_name: 'Virtual Machine' })).toBe('hyperv');
    expect(detectPlatform({ sys_vendor: 'VMware, Inc.', product_name: 'VMware Virtual Platform' })).toBe('vmware');
    expect(detectPlatform({ sys_vendor: 'QEMU', product_name: 'Standard PC (Q35 + ICH9, 2009)' })).toBe('other');
    expect(detectPlatform({})).toBe('other');
  });
  it('tells HVM, Xen PV and physical apart', () => {
    expect(virtualizationType('', true, {})).toBe('HVM');
    expect(virtualizationType('xen', false, {})).toBe('PV');
    expect(virtualizationType('', false, { sys_vendor: 'Dell Inc.', product_name: 'PowerEdge R740' })).toBe('PHYSICAL');
    expect(virtualizationType('', false, { sys_vendor: 'QEMU', product_name: 'Standard PC' })).toBe('HVM');
  });
  it('finds the boot loader by its files', () => {
    expect(detectBootLoader(['/boot/grub2', '/etc/default/grub'])).toBe('GRUB');
    expect(detectBootLoader(['/etc/lilo.conf'])).toBe('LILO');
    expect(detectBootLoader([])).toBeUndefined();
  });
  it('averages read wait over the given disks only', () => {
    const stats = ' 254       0 vda 100 0 800 50 0 0 0 0 0 0 0\n 254       1 vda1 100 0 800 5000 0 0 0 0 0 0 0\n   8       0 sda 300 0 800 250 0 0 0 0 0 0 0\n';
    expect(averageReadWaitMs(stats, ['vda', 'sda'])).toBe(0.75);
    expect(averageReadWaitMs(stats, ['nvme0n1'])).toBe(0);
  });
});

describe('superblocks', () => {
  it('reads the inode size of ext4 and xfs', () => {
    const ext = Buffer.alloc(2048);
    ext.writeUInt16LE(0xef53, 1024 + 56);
    ext.writeUInt32LE(1, 1024 + 76);
    ext.writeUInt16LE(256, 1024 + 88);
    expect(inodeSizeFromSuperblock(ext)).toBe(256);
    ext.writeUInt32LE(0, 1024 + 76); // revision 0: fixed 128-byte inodes
    expect(inodeSizeFromSuperblock(ext)).toBe(128);
    const xfs = Buffer.alloc(2048);
    xfs.write('XFSB', 0, 'latin1');
    xfs.writeUInt16BE(512, 104);
    expect(inodeSizeFromSuperblock(xfs)).toBe(512);
    expect(inodeSizeFromSuperblock(Buffer.alloc(2048))).toBe(0);
  });
});

describe('where an inactive LV starts on its PV', () => {
  it('combines lvs --segments, pvs pe_start and vgs extent size (recorded outputs)', async () => {
    const { lvFirstExtents } = await import('../../../src/discovery/linux/lvm.js');
    const segs = `  {
      "report": [
          {
              "seg": [
                  {"lv_name":"a", "vg_name":"ytestvg", "lv_dm_path":"/dev/mapper/ytestvg-a", "seg_start_pe":"0", "seg_pe_ranges":"/dev/loop2:0-1", "segtype":"linear", "seg_size":"8388608B"},
                  {"lv_name":"b", "vg_name":"ytestvg", "lv_dm_path":"/dev/mapper/ytestvg-b", "seg_start_pe":"0", "seg_pe_ranges":"/dev/loop2:2-4", "segtype":"linear", "seg_size":"12582912B"},
                  {"lv_name":"b", "vg_name":"ytestvg", "lv_dm_path":"/dev/mapper/ytestvg-b", "seg_start_pe":"3", "seg_pe_ranges":"/dev/loop3:0-6", "segtype":"linear", "seg_size":"29360128B"},
                  {"lv_name":"s", "vg_name":"ytestvg", "lv_dm_path":"/dev/mapper/ytestvg-s", "seg_start_pe":"0", "seg_pe_ranges":"/dev/loop2:5-6 /dev/loop3:7-8", "segtype":"striped", "seg_size":"16777216B"}
              ]
          }
      ]
  }`;
    const pvs = '{"report":[{"pv":[{"pv_name":"/dev/loop2", "vg_name":"ytestvg", "pv_size":"100663296B", "pv_free":"0B", "pe_start":"1048576B"},{"pv_name":"/dev/loop3", "vg_name":"ytestvg", "pv_size":"100663296B", "pv_free":"0B", "pe_start":"1048576B"}]}]}';
    const vgs = '{"report":[{"vg":[{"vg_name":"ytestvg", "vg_size":"201326592B", "vg_free":"0B", "vg_extent_size":"4194304B"}]}]}';
    const m = lvFirstExtents(segs, pvs, vgs);
    expect(m.get('/dev/mapper/ytestvg-a')).toEqual({ pv: '/dev/loop2', offset: 1048576, size: 8388608 });
    expect(m.get('/dev/mapper/ytestvg-b')).toEqual({ pv: '/dev/loop2', offset: 1048576 + 2 * 4194304, size: 12582912 });
    expect(m.has('/dev/mapper/ytestvg-s')).toBe(false); // striped over two PVs: not probed
  });
});
