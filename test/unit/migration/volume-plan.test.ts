// Which source each volume the receiver names is read from, which parts of
// a layout are not copied (and the reason the summary gives), the order
// volumes are started in, and how a layout from a file finds its source
// devices.

import { describe, expect, it } from 'vitest';
import { LayoutSchema, type Layout } from '../../../src/layout/model.js';
import type { VolumeTarget } from '../../../src/layout/system-session.js';
import { copyLanes, expectedSources, leftOut, planVolumes, SMALL_VOLUME_BYTES, startOrder } from '../../../src/migration/volume-plan.js';
import { attachSources } from '../../../src/migration/source-match.js';
import { sourceExcludes } from '../../../src/migration/source-excludes.js';

const GPT_LINUX = '0FC63DAF-8483-4772-8E7D-3D69D8477DE4';

const source: Layout = LayoutSchema.parse({
  version: 1,
  disks: [
    {
      name: 'disk0',
      sizeBytes: 2 * 2 ** 30,
      table: 'gpt',
      sourceDevice: '/dev/sda',
      partitions: [
        { id: 'disk0p1', number: 1, sizeBytes: 1 << 20, type: '21686148-6449-6E6F-744E-656564454649', sourceDevice: '/dev/sda1', content: { kind: 'none' } },
        { id: 'disk0p2', number: 2, sizeBytes: 64 << 20, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', sourceDevice: '/dev/sda2', content: { kind: 'filesystem', fsType: 'vfat', uuid: 'ABCD-1234', mountPoint: '/boot/efi' } },
        { id: 'disk0p3', number: 3, sizeBytes: 200 << 20, type: GPT_LINUX, sourceDevice: '/dev/sda3', content: { kind: 'filesystem', fsType: 'ext4', uuid: 'AAAA-boot', mountPoint: '/boot' } },
        { id: 'disk0p4', number: 4, sizeBytes: 300 << 20, type: GPT_LINUX, sourceDevice: '/dev/sda4', content: { kind: 'filesystem', fsType: 'btrfs', uuid: 'bbbb', subvolumes: [{ path: '@', mountPoint: '/srv' }, { path: '@home', mountPoint: '/home' }] } },
        { id: 'disk0p5', number: 5, sizeBytes: 32 << 20, type: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', sourceDevice: '/dev/sda5', content: { kind: 'swap', uuid: 'cccc' } },
        { id: 'disk0p6', number: 6, sizeBytes: 100 << 20, type: 'E6D6D379-F507-44C2-A23C-238F2A3DF928', sourceDevice: '/dev/sda6', content: { kind: 'lvm-pv', vg: 'vg0' } },
      ],
    },
  ],
  volumeGroups: [
    {
      name: 'vg0',
      logicalVolumes: [
        { id: 'vg0-data', name: 'data', sizeBytes: 40 << 20, sourceDevice: '/dev/vg0/data', content: { kind: 'none' } },
        { id: 'vg0-logs', name: 'logs', sizeBytes: 40 << 20, sourceDevice: '/dev/vg0/logs', content: { kind: 'filesystem', fsType: 'ext4', uuid: 'dddd', mountPoint: '/var/log' } },
      ],
    },
  ],
});

const vt = (v: Partial<VolumeTarget> & Pick<VolumeTarget, 'id' | 'kind'>): VolumeTarget => ({
  target: `m.${v.id.replace(/[^A-Za-z0-9_.-]/g, '_')}`,
  sizeBytes: 0,
  fsType: '',
  mountPoint: '',
  ...v,
});

/** The file-level targets of `source`: the ESP as blocks, /boot, a btrfs and its subvolume, an LV. */
const targets = [
  vt({ id: 'disk0p2', kind: 'block', fsType: 'vfat' }),
  vt({ id: 'disk0p3', kind: 'file', fsType: 'ext4', mountPoint: '/boot' }),
  vt({ id: 'disk0p4', kind: 'file', fsType: 'btrfs' }),
  vt({ id: 'disk0p4:@home', kind: 'file', fsType: 'btrfs', subvolume: '@home', mountPoint: '/home' }),
  vt({ id: 'vg0-logs', kind: 'file', fsType: 'ext4', mountPoint: '/var/log', flattenedFrom: 'vg0/logs' }),
];

describe('planVolumes (file level)', () => {

  it('reads the ESP as bytes, ext4 from its mount, btrfs subvolumes below the top level, and skips an LV that is not active', () => {
    const jobs = planVolumes(source, targets, (d) => d !== '/dev/vg0/logs');
    expect(jobs.map((j) => j.source)).toEqual([
      { kind: 'device', device: '/dev/sda2' },
      { kind: 'filesystem', device: '/dev/sda3', fsType: 'ext4', mountPoint: '/boot' },
      { kind: 'btrfs', device: '/dev/sda4', partitionId: 'disk0p4', subvolume: '' },
      { kind: 'btrfs', device: '/dev/sda4', partitionId: 'disk0p4', subvolume: '@home' },
      { kind: 'skip', reason: 'logical volume vg0/logs is not active on the source (no /dev/vg0/logs): laid out, not copied' },
    ]);
  });

  it('an active LV is copied from its device', () => {
    const jobs = planVolumes(source, targets, () => true);
    expect(jobs[4]!.source).toEqual({ kind: 'filesystem', device: '/dev/vg0/logs', fsType: 'ext4', mountPoint: '/var/log' });
  });

  it('lists what is laid out but not copied, with the reason', () => {
    expect(leftOut(source, targets).map((l) => [l.id, l.reason.split(':')[0]])).toEqual([
      ['disk0p1', 'no file system (a BIOS boot, extended or unformatted partition, or an LV without one)'],
      ['disk0p5', 'swap'],
      ['disk0p6', 'LVM physical volume of vg0'],
      ['vg0-data', 'no file system (a BIOS boot, extended or unformatted partition, or an LV without one)'],
    ]);
  });
});

describe('expectedSources', () => {
  it('guesses the file systems a file-level copy reads, keyed as the copy mounts them: not the ESP (copied as bytes), swap, a PV or an LV that is not active', () => {
    expect(expectedSources(source, () => false)).toEqual([
      { key: 'disk0p3', source: { kind: 'filesystem', device: '/dev/sda3', fsType: 'ext4', mountPoint: '/boot' } },
      { key: 'disk0p4', source: { kind: 'btrfs', device: '/dev/sda4', partitionId: 'disk0p4', subvolume: '' } },
    ]);
    // Each key is the one planVolumes' jobs are mounted under (a volume's id; a btrfs file system's partition).
    const jobs = planVolumes(source, targets, () => true);
    expect(jobs.find((j) => j.target.id === 'disk0p3')!.source).toEqual(expectedSources(source, () => true)[0]!.source);
  });

  it('an active LV is expected too', () => {
    expect(expectedSources(source, (d) => d === '/dev/vg0/logs').map((e) => e.key)).toEqual(['disk0p3', 'disk0p4', 'vg0-logs']);
  });
});

describe('startOrder', () => {
  it('starts the volumes with the most bytes to read first (a file system\'s used bytes, Btrfs subvolumes the whole file system\'s, a block volume\'s size), the layout\'s order among equals', () => {
    const used = (id: string, usedBytes: number) => (p: { id: string; content: { kind: string } }) => (p.id === id && p.content.kind === 'filesystem' ? { ...p, content: { ...p.content, usedBytes } } : p);
    const withUse: Layout = {
      ...source,
      disks: source.disks.map((d) => ({ ...d, partitions: d.partitions.map(used('disk0p3', 150 << 20)).map(used('disk0p4', 90 << 20)) as typeof d.partitions })),
    };
    const jobs = planVolumes(withUse, targets, (d) => d !== '/dev/vg0/logs');
    expect(jobs.map((j) => [j.target.id, j.readBytes / (1 << 20)])).toEqual([
      ['disk0p2', 64],
      ['disk0p3', 150],
      ['disk0p4', 90],
      ['disk0p4:@home', 90],
      ['vg0-logs', 0],
    ]);
    expect(startOrder(jobs.map((job) => ({ job }))).map((p) => p.job.target.id)).toEqual(['disk0p3', 'disk0p4', 'disk0p4:@home', 'disk0p2', 'vg0-logs']);
  });
});

describe('copyLanes', () => {
  const job = (id: string, readBytes: number) => ({ job: { target: vt({ id, kind: 'file' }), source: { kind: 'device' as const, device: `/dev/${id}` }, readBytes } });
  const ids = (ps: { job: { target: { id: string } } }[]) => ps.map((p) => p.job.target.id);
  const planned = [job('esp', 64 << 20), job('root', 900 << 20), job('boot', 12 << 20), job('data', 400 << 20), job('opt', SMALL_VOLUME_BYTES + 1), job('lv', 0)];

  it('with two lanes or more, the small volumes (at most 64 MiB to read) go in a lane of their own, each list largest first', () => {
    const { shared, small } = copyLanes(planned, 2);
    expect(ids(shared)).toEqual(['root', 'data', 'opt']);
    expect(ids(small)).toEqual(['esp', 'boot', 'lv']);
  });

  it('with one lane, every volume takes its turn on it, largest first', () => {
    const { shared, small } = copyLanes(planned, 1);
    expect(ids(shared)).toEqual(['root', 'data', 'opt', 'esp', 'boot', 'lv']);
    expect(small).toEqual([]);
  });
});

describe('planVolumes (block level)', () => {
  it('a whole-disk volume reads the source disk and covers all its partitions', () => {
    const targets = [vt({ id: 'disk0', kind: 'block', wholeDisk: true })];
    expect(planVolumes(source, targets, () => true)[0]!.source).toEqual({ kind: 'device', device: '/dev/sda' });
    expect(leftOut(source, targets).map((l) => l.id)).toEqual(['vg0-data', 'vg0-logs']);
  });

  it('a partition volume reads the source partition', () => {
    const targets = [vt({ id: 'disk0p3', kind: 'block' })];
    expect(planVolumes(source, targets, () => true)[0]!.source).toEqual({ kind: 'device', device: '/dev/sda3' });
  });
});

describe('attachSources', () => {
  it('finds each target volume by UUID, then mount point, then id', () => {
    const target: Layout = LayoutSchema.parse({
      version: 1,
      disks: [
        {
          name: 'big',
          sizeBytes: 4 * 2 ** 30,
          table: 'gpt',
          partitions: [
            { id: 'p1', number: 1, sizeBytes: 400 << 20, type: GPT_LINUX, content: { kind: 'filesystem', fsType: 'ext4', uuid: 'aaaa-BOOT' } },
            { id: 'p2', number: 2, sizeBytes: 400 << 20, type: GPT_LINUX, content: { kind: 'filesystem', fsType: 'ext4', mountPoint: '/var/log' } },
            { id: 'disk0p4', number: 3, sizeBytes: 400 << 20, type: GPT_LINUX, content: { kind: 'filesystem', fsType: 'btrfs' } },
            { id: 'p9', number: 4, sizeBytes: 400 << 20, type: GPT_LINUX, content: { kind: 'filesystem', fsType: 'xfs', mountPoint: '/nowhere' } },
          ],
        },
      ],
    });
    const made = attachSources(target, source);
    expect(made.disks[0]!.sourceDevice).toBe('/dev/sda');
    expect(made.disks[0]!.partitions.map((p) => p.sourceDevice)).toEqual(['/dev/sda3', '/dev/vg0/logs', '/dev/sda4', '']);
  });
});

describe('sourceExcludes', () => {
  it("the engine's defaults land in the file system that holds them, relative to its mount", () => {
    const o = { sourceRoot: '/srv/src', stateDir: '/srv/src/var/lib/ferry' };
    expect(sourceExcludes('/', o)).toEqual(['/proc/*', '/sys/*', '/dev/*', '/run/*', '/tmp/*', '/var/run/*', '/var/lock/*', '/mnt/*', '/media/*', '/var/lib/ferry']);
    expect(sourceExcludes('/var', o)).toEqual(['/run/*', '/lock/*', '/lib/ferry']);
    expect(sourceExcludes('/tmp', o)).toEqual(['/*']);
    expect(sourceExcludes('/home', o)).toEqual([]);
    expect(sourceExcludes('', o)).toEqual([]);
  });

  it('a state directory outside the source root is not the source\'s; glob characters in it are taken literally', () => {
    expect(sourceExcludes('/home', { sourceRoot: '/mnt/x', stateDir: '/root/.local/state/ferry' })).toEqual([]);
    expect(sourceExcludes('/home', { sourceRoot: '/mnt/x', stateDir: '/mnt/x/home/a[1]*' })).toEqual(['/a[[]1][*]']);
  });
});
