// The receiver lays out whole target disks for a 'system' session (issue 15),
// on image-file disks (`ferry receive --disk NAME=FILE`, attached as loop
// devices by the receiver) over real TLS: a GPT disk with BIOS boot, an ESP
// (vfat), ext4, xfs, btrfs with subvolumes, a default subvolume and a
// snapshot, and swap; an MBR disk with an extended partition holding two
// logical ones and an LVM volume group, flattened into partitions (this
// kernel has no device-mapper). sfdisk, blkid and btrfs read back exactly the
// types, flags, UUIDs and labels asked; the volumes are receiver targets an
// ordinary file session writes into; the same layout again is recognised and
// nothing is rewritten; a changed one is refused; END unmounts everything.
// Bad requests are refused before a byte is written, with the receiver
// serving on.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Layout } from '../../src/layout/model.js';
import { LayoutSchema } from '../../src/layout/model.js';
import type { SystemReply } from '../../src/layout/system-session.js';
import { FerryError } from '../../src/errors/ferry-error.js';
import { openClientSession } from '../../src/replication/session/connect.js';
import { startReceiver, type RunningReceiver } from '../helpers/block.js';
import { migrateFiles } from '../helpers/file-pass.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';
import { SystemClient } from '../helpers/system-client.js';
import { expectParentsFirst, mountsUnder } from '../helpers/mounts.js';

const MiB = 1024 * 1024;
const env = needs({ root: true, tools: ['sfdisk', 'partx', 'losetup', 'blkid', 'mkfs.ext4', 'mkfs.xfs', 'mkfs.btrfs', 'mkfs.vfat', 'mkswap', 'btrfs', 'wipefs'] });

const GPT = {
  bios: '21686148-6449-6E6F-744E-656564454649',
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
};
const UUID = {
  boot: '3f0c7b52-6a1e-4c43-9d3e-2a8f1b7e0c11',
  root: '8d2e4f60-1b3c-4a5d-8e7f-90a1b2c3d4e5',
  btrfs: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
  swap: '5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9',
  data: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
  log: '1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e',
  opt: '2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f',
  lv: '3d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f7a',
};

/** The test server, by hand: what discovery would find on it. */
function serverLayout(): Layout {
  const fs = (fsType: 'ext4' | 'xfs' | 'btrfs' | 'vfat', uuid: string, label: string, mountPoint: string, extra = {}) => ({ kind: 'filesystem' as const, fsType, uuid, label, mountPoint, ...extra });
  return LayoutSchema.parse({
    version: 1,
    disks: [
      {
        name: 'a',
        sizeBytes: 1024 * MiB,
        table: 'gpt',
        tableId: '6E1A3C2B-0D4F-4B8A-9C7E-1F2D3A4B5C6D',
        partitions: [
          { id: 'ap1', number: 1, sizeBytes: 1 * MiB, type: GPT.bios, name: 'bios', attrs: ['LegacyBIOSBootable'], content: { kind: 'none' } },
          { id: 'ap2', number: 2, sizeBytes: 64 * MiB, type: GPT.esp, name: 'EFI System', partUuid: 'D3B1A0C2-4E5F-4A6B-9C8D-7E6F5A4B3C2D', content: fs('vfat', 'ABCD-1234', 'ESP', '/boot/efi') },
          { id: 'ap3', number: 3, sizeBytes: 200 * MiB, type: GPT.linux, name: 'boot', content: fs('ext4', UUID.boot, 'boot', '/boot') },
          { id: 'ap4', number: 4, sizeBytes: 320 * MiB, type: GPT.linux, name: 'root', content: fs('xfs', UUID.root, 'root', '/') },
          {
            id: 'ap5', number: 5, sizeBytes: 300 * MiB, type: GPT.linux, name: 'pool',
            content: fs('btrfs', UUID.btrfs, 'pool', '', {
              subvolumes: [
                { path: '@', mountPoint: '/srv' },
                { path: '@home', mountPoint: '/home' },
                { path: '@home/.snapshots', mountPoint: '' },
                { path: '@snap-1', readOnlyOnSource: true },
              ],
              defaultSubvolume: '@',
            }),
          },
          { id: 'ap6', number: 6, sizeBytes: 32 * MiB, type: GPT.swap, name: 'swap', content: { kind: 'swap', uuid: UUID.swap, label: 'swap' } },
        ],
      },
      {
        name: 'b',
        sizeBytes: 1024 * MiB,
        table: 'dos',
        tableId: '0x1234abcd',
        partitions: [
          { id: 'bp1', number: 1, sizeBytes: 320 * MiB, type: '83', bootable: true, content: fs('xfs', UUID.data, 'data', '/data') },
          { id: 'bp2', number: 2, sizeBytes: 220 * MiB, type: '5', content: { kind: 'none' } },
          { id: 'bp5', number: 5, sizeBytes: 100 * MiB, type: '83', logical: true, content: fs('ext4', UUID.log, 'log', '/var/log') },
          { id: 'bp6', number: 6, sizeBytes: 100 * MiB, type: '83', logical: true, content: fs('ext4', UUID.opt, 'opt', '/opt') },
          { id: 'bp3', number: 3, sizeBytes: 200 * MiB, type: '8e', content: { kind: 'lvm-pv', vg: 'vg0' } },
        ],
      },
    ],
    volumeGroups: [
      {
        name: 'vg0',
        logicalVolumes: [
          { id: 'vg0-lv1', name: 'lv1', sizeBytes: 64 * MiB, content: fs('ext4', UUID.lv, 'lv1', '') },
          { id: 'vg0-lv2', name: 'lv2', sizeBytes: 64 * MiB, content: { kind: 'none' } },
        ],
      },
    ],
  });
}

interface SfdiskTable {
  label: string;
  id: string;
  partitions: Array<{ node: string; start: number; size: number; type: string; uuid?: string; name?: string; attrs?: string; bootable?: boolean }>;
}
const sfdisk = (image: string) => (JSON.parse(sh('sfdisk', ['--json', image])) as { partitiontable: SfdiskTable }).partitiontable;
const blkid = (dev: string) => Object.fromEntries(sh('blkid', ['-p', '-o', 'export', dev]).trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
const loopOf = (image: string) => sh('losetup', ['-j', image, '-O', 'NAME', '-n']).trim();

function expectRefused(r: SystemReply | FerryError, code: string, message: RegExp): void {
  expect(r).toBeInstanceOf(FerryError);
  expect((r as FerryError).code).toBe(code);
  expect((r as FerryError).message).toMatch(message);
}

describe.runIf(env.ok)('the receiver lays out whole disks for a system session', () => {
  let dir: string;
  let data: string;
  let busy: LoopDisk;
  let recv: RunningReceiver;
  const image = (n: string) => join(dir, `${n}.img`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-system-'));
    data = join(dir, 'recv');
    for (const [n, size] of [['a', 1024], ['b', 1024], ['tiny', 16]] as const) writeFileSync(image(n), '') , sh('truncate', ['-s', `${size}M`, image(n)]);
    // A disk something else uses: an ext4 partition of it is mounted.
    busy = LoopDisk.create(32 * MiB, 'ferry-system-busy-');
    sh('sfdisk', ['--quiet', busy.device], 'label: gpt\n,16M\n');
    busy.rescan();
    sh('mkfs.ext4', ['-q', '-F', busy.part(1)]);
    busy.mount(busy.part(1));
    mkdirSync(join(dir, 'plain'));
    recv = await startReceiver(data, [`plain=${join(dir, 'plain')}`], ['--disk', `a=${image('a')}`, '--disk', `b=${image('b')}`, '--disk', `tiny=${image('tiny')}`, '--disk', `busy=${busy.device}`]);
  }, 60_000);

  afterAll(async () => {
    await recv?.stop();
    busy?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tells the agent its disks in WELCOME', async () => {
    const c = await SystemClient.open(recv.info, 'm1');
    expect(c.disks).toEqual([
      { name: 'a', sizeBytes: 1024 * MiB, sectorBytes: 512 },
      { name: 'b', sizeBytes: 1024 * MiB, sectorBytes: 512 },
      { name: 'tiny', sizeBytes: 16 * MiB, sectorBytes: 512 },
      { name: 'busy', sizeBytes: 32 * MiB, sectorBytes: 512 },
    ]);
    await c.end();
  });

  it('writes the tables, file systems and subvolumes asked, mounts the tree, and serves each volume as a target', async () => {
    const c = await SystemClient.open(recv.info, 'm1');
    const reply = await c.request({ op: 'layout', mode: 'file', layout: serverLayout() });
    if (reply instanceof Error) throw reply;
    expect(reply.op).toBe('layout');
    if (reply.op !== 'layout') return;
    expect(reply.state).toBe('created');
    expect(reply.stagingRoot).toBe(join(data, 'systems/m1/root'));
    expect(reply.notes).toEqual(['vg0/lv1 became partition bp3 (no device-mapper on the receiver)', 'vg0/lv2 became partition bp4 (no device-mapper on the receiver)']);

    // GPT: types, names, attributes, the PARTUUID and the disk GUID asked.
    const a = sfdisk(image('a'));
    expect(a.label).toBe('gpt');
    expect(a.id).toBe('6E1A3C2B-0D4F-4B8A-9C7E-1F2D3A4B5C6D');
    expect(a.partitions.map((p) => [p.type, p.name, p.attrs ?? '', p.size * 512])).toEqual([
      [GPT.bios, 'bios', 'LegacyBIOSBootable', 1 * MiB],
      [GPT.esp, 'EFI System', '', 64 * MiB],
      [GPT.linux, 'boot', '', 200 * MiB],
      [GPT.linux, 'root', '', 320 * MiB],
      [GPT.linux, 'pool', '', 300 * MiB],
      [GPT.swap, 'swap', '', 32 * MiB],
    ]);
    expect(a.partitions[1]!.uuid).toBe('D3B1A0C2-4E5F-4A6B-9C8D-7E6F5A4B3C2D');
    // MBR: the identifier, the boot flag, the extended partition holding the logical ones; the LVs as primary partitions.
    const b = sfdisk(image('b'));
    expect(b.label).toBe('dos');
    expect(b.id).toBe('0x1234abcd');
    const bParts = b.partitions.map((p) => [Number(/(\d+)$/.exec(p.node)![1]), p.type, p.bootable ?? false, p.size * 512]);
    expect(bParts).toEqual([
      [1, '83', true, 320 * MiB],
      [2, '5', false, expect.any(Number)],
      [3, '83', false, 64 * MiB],
      [4, '83', false, 64 * MiB],
      [5, '83', false, 100 * MiB],
      [6, '83', false, 100 * MiB],
    ]);
    const ext = b.partitions[1]!;
    for (const l of b.partitions.slice(4)) expect(l.start > ext.start && l.start + l.size <= ext.start + ext.size).toBe(true);

    // File systems and swap with the source's UUIDs and labels.
    const la = loopOf(image('a'));
    const lb = loopOf(image('b'));
    const ids = (dev: string) => {
      const k = blkid(dev);
      return [k.TYPE, k.UUID, k.LABEL];
    };
    expect(ids(`${la}p2`)).toEqual(['vfat', 'ABCD-1234', 'ESP']);
    expect(ids(`${la}p3`)).toEqual(['ext4', UUID.boot, 'boot']);
    expect(ids(`${la}p4`)).toEqual(['xfs', UUID.root, 'root']);
    expect(ids(`${la}p5`)).toEqual(['btrfs', UUID.btrfs, 'pool']);
    expect(ids(`${la}p6`)).toEqual(['swap', UUID.swap, 'swap']);
    expect(ids(`${lb}p1`)).toEqual(['xfs', UUID.data, 'data']);
    expect(ids(`${lb}p3`)).toEqual(['ext4', UUID.lv, 'lv1']);
    expect(ids(`${lb}p5`)).toEqual(['ext4', UUID.log, 'log']);
    expect(ids(`${lb}p6`)).toEqual(['ext4', UUID.opt, 'opt']);

    // Btrfs: every subvolume (the snapshot a plain writable one), the default one.
    const top = join(data, 'systems/m1/btrfs/ap5');
    const subvols = sh('btrfs', ['subvolume', 'list', top]).trim().split('\n').map((l) => l.split(' path ')[1]);
    expect(subvols).toEqual(['@', '@home', '@home/.snapshots', '@snap-1']);
    expect(sh('btrfs', ['subvolume', 'get-default', top])).toMatch(/ path @\n?$/);
    expect(sh('btrfs', ['property', 'get', '-ts', join(top, '@snap-1'), 'ro']).trim()).toBe('ro=false');

    // The target tree; vfat never mounted; LV1 (no mount point) under unmounted/. Mounts that do not sit on
    // each other are made side by side, so mountinfo's order is only partly given: each comes after the file
    // systems it sits in, and the bind of '/' after the tree.
    const root = reply.stagingRoot;
    const mounted = mountsUnder(join(data, 'systems/m1'));
    expectParentsFirst(mounted);
    expect(mounted.at(-1)).toBe(join(data, 'systems/m1/fs/ap4'));
    expect([...mounted].sort()).toEqual([
      top,
      root,
      join(root, 'boot'),
      join(root, 'data'),
      join(root, 'home'),
      join(root, 'opt'),
      join(root, 'srv'),
      join(root, 'var/log'),
      join(data, 'systems/m1/unmounted/vg0-lv1'),
      // '/' has file systems mounted below it: it is served at a bind of its own mount.
      join(data, 'systems/m1/fs/ap4'),
    ].sort());

    // The volumes the agent copies, each a receiver target, in the layout's order (the LVs where their PV was).
    expect(reply.volumes.map((v) => [v.id, v.kind, v.target, v.subvolume ?? null, v.flattenedFrom ?? null])).toEqual([
      ['ap1', 'block', 'm1.ap1', null, null],
      ['ap2', 'block', 'm1.ap2', null, null],
      ['ap3', 'file', 'm1.ap3', null, null],
      ['ap4', 'file', 'm1.ap4', null, null],
      ['ap5', 'file', 'm1.ap5', '', null],
      ['ap5:@', 'file', 'm1.ap5.at-', '@', null],
      ['ap5:@home', 'file', 'm1.ap5.at-home', '@home', null],
      ['ap5:@home/.snapshots', 'file', 'm1.ap5.at-home-.snapshots', '@home/.snapshots', null],
      ['ap5:@snap-1', 'file', 'm1.ap5.at-snap-1', '@snap-1', null],
      ['bp1', 'file', 'm1.bp1', null, null],
      ['bp5', 'file', 'm1.bp5', null, null],
      ['bp6', 'file', 'm1.bp6', null, null],
      ['vg0-lv1', 'file', 'm1.vg0-lv1', null, 'vg0/lv1'],
    ]);
    // An ordinary file session writes into /boot through its target.
    const src = join(dir, 'boot-src');
    mkdirSync(src);
    writeFileSync(join(src, 'vmlinuz'), 'kernel\n');
    await migrateFiles(recv.info, src, 'm1.ap3', join(dir, 'migrate-state'));
    expect(readFileSync(join(root, 'boot/vmlinuz'), 'utf8')).toBe('kernel\n');
    expect(blkid(`${la}p3`).UUID).toBe(UUID.boot);
    // A volume is copied one way only: a block session into a file system volume is refused.
    await expect(
      openClientSession({ host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint }, { kind: 'block', target: 'm1.ap3', passId: randomUUID(), sizeBytes: MiB }),
    ).rejects.toThrow(/FERRY_KIND_UNSUPPORTED|takes file-level sessions, not block-level ones/);

    // END: everything unmounted, the loop devices the receiver attached detached, the targets gone.
    await c.end();
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
    expect(loopOf(image('a'))).toBe('');
    expect(loopOf(image('b'))).toBe('');
    await expect(migrateFiles(recv.info, src, 'm1.ap3', join(dir, 'migrate-state'))).rejects.toThrow(/SMS\.0411/);
  }, 120_000);

  it('recognises disks that hold the same layout and writes nothing; refuses a changed one', async () => {
    const before = sfdisk(image('a'));
    const c = await SystemClient.open(recv.info, 'm1');
    const reply = await c.request({ op: 'layout', mode: 'file', layout: serverLayout() });
    if (reply instanceof Error) throw reply;
    expect(reply.op === 'layout' && reply.state).toBe('recognised');
    // The file copied into /boot last time is still there: nothing was reformatted.
    expect(readFileSync(join(data, 'systems/m1/root/boot/vmlinuz'), 'utf8')).toBe('kernel\n');
    expect(sfdisk(image('a'))).toEqual(before);
    await c.end();

    const changed = serverLayout();
    changed.disks[0]!.partitions[2]!.sizeBytes = 180 * MiB;
    const c2 = await SystemClient.open(recv.info, 'm1');
    expectRefused(await c2.request({ op: 'layout', mode: 'file', layout: changed }), 'FERRY_LAYOUT_CHANGED', /another layout/);
    c2.close();
    expect(sfdisk(image('a'))).toEqual(before);
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
  }, 120_000);

  it('refuses, before writing anything, a disk it was not given, a disk in use, a disk too small, an unknown file system and a malformed UUID', async () => {
    const busyTable = sh('sfdisk', ['--dump', busy.device]);
    const one = (disk: string, sizeBytes: number, content: object) =>
      LayoutSchema.parse({ version: 1, disks: [{ name: disk, sizeBytes, table: 'gpt', partitions: [{ id: 'p1', number: 1, sizeBytes, type: GPT.linux, content }] }] });
    const ext4 = { kind: 'filesystem', fsType: 'ext4', mountPoint: '/' };
    const ask = async (layout: unknown) => {
      const c = await SystemClient.open(recv.info, 'm2');
      const r = await c.requestRaw(JSON.stringify({ op: 'layout', mode: 'file', layout }));
      c.close();
      return r;
    };
    expectRefused(await ask(one('nope', 8 * MiB, ext4)), 'SMS.0411', /the layout names disk "nope", which this receiver was not given/);
    expectRefused(await ask(one('busy', 8 * MiB, ext4)), 'FERRY_DISK_IN_USE', new RegExp(`${busy.device}p1 holds a ext4 file system mounted at `));
    expectRefused(await ask(one('tiny', 64 * MiB, ext4)), 'SMS.1315', /disk tiny: the partitions need 68174336 bytes .* the target disk has 16777216 bytes .*: 51397120 bytes .* short/);
    const zfs = { ...one('tiny', 8 * MiB, ext4), disks: [{ ...one('tiny', 8 * MiB, ext4).disks[0], partitions: [{ id: 'p1', number: 1, sizeBytes: 8 * MiB, type: GPT.linux, content: { kind: 'filesystem', fsType: 'zfs' } }] }] };
    expectRefused(await ask(zfs), 'FERRY_FS_UNSUPPORTED', /file system type 'zfs' of volume p1/);
    // A UUID mkfs.ext4 would read as a keyword (a fresh random one instead of the source's): refused, not passed on.
    expectRefused(await ask(one('tiny', 8 * MiB, { ...ext4, uuid: 'random' })), 'FERRY_LAYOUT_INVALID', /partition p1: the ext4 UUID "random" is not a UUID of 32 hex digits/);
    const c = await SystemClient.open(recv.info, 'm2');
    expectRefused(await c.requestRaw('{"op":"layout",'), 'FERRY_FRAME_MALFORMED', /not JSON/);
    c.close();

    // Nothing was written: the busy disk's table is as it was, the tiny image holds no data at all.
    expect(sh('sfdisk', ['--dump', busy.device])).toBe(busyTable);
    expect(statSync(image('tiny')).blocks).toBe(0);
    expect(existsSync(join(data, 'systems/m2/layout.json'))).toBe(false);
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
    // And the receiver serves on: a file pass into its plain target.
    const src = join(dir, 'plain-src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'x');
    await migrateFiles(recv.info, src, 'plain', join(dir, 'migrate-state-plain'));
    expect(readFileSync(join(dir, 'plain/f'), 'utf8')).toBe('x');
  }, 120_000);
});
