// The receiver's 'system' session beyond a first file-level layout (issue 15):
// at block level a disk whose partitions keep the source's places is one
// whole-disk volume that an ordinary block pass copies, and 'volume-done'
// then moves the GPT backup header to the larger disk's end, grows the last
// partition and its ext4 (MBR: a last logical partition with its extended
// partition); a receiver killed with -9 while it holds a layout
// mounted cleans its mounts and loop devices at the next start, and
// recognises the layout without reformatting; only an explicit re-layout
// makes the disks anew; a receiver stopped with SIGTERM unmounts and
// detaches by itself.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayoutSchema, type Layout } from '../../src/layout/model.js';
import { migrateArgs, startReceiver, type RunningReceiver } from '../helpers/block.js';
import { runFerry } from '../helpers/cli.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';
import { SystemClient } from '../helpers/system-client.js';
import { mountsUnder } from '../helpers/mounts.js';

const MiB = 1024 * 1024;
const env = needs({ root: true, tools: ['sfdisk', 'partx', 'losetup', 'blkid', 'mkfs.ext4', 'e2fsck', 'resize2fs', 'debugfs', 'dumpe2fs'] });
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const BIOS = '21686148-6449-6E6F-744E-656564454649';
const FS_UUID = '7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f';

const loopOf = (image: string) => sh('losetup', ['-j', image, '-O', 'NAME', '-n']).trim();
interface Table {
  partitions: Array<{ start: number; size: number }>;
  lastlba: number;
}
const table = (image: string) => (JSON.parse(sh('sfdisk', ['--json', image])) as { partitiontable: Table }).partitiontable;

/** What blkid finds on `dev` ('' when nothing). */
function fsType(dev: string): string {
  const r = spawnSync('blkid', ['-p', '-s', 'TYPE', '-o', 'value', dev], { encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 2) throw new Error(`blkid ${dev}: exit ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs `fn` with the image attached as a loop device of the test's own. */
function withLoop<T>(image: string, fn: (dev: string) => T): T {
  const dev = sh('losetup', ['-f', '--show', '-P', image]).trim();
  try {
    sh('partx', ['-u', dev]);
    return fn(dev);
  } finally {
    sh('losetup', ['-d', dev]);
  }
}

describe.runIf(env.ok)('block-level layouts, growing, and a receiver restarted after kill -9', () => {
  let dir: string;
  let data: string;
  let source: LoopDisk;
  let recv: RunningReceiver;
  const image = (n: string) => join(dir, `${n}.img`);
  const start = () => startReceiver(data, [], ['--disk', `c=${image('c')}`, '--disk', `d=${image('d')}`, '--disk', `e=${image('e')}`]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-system-block-'));
    data = join(dir, 'recv');
    sh('truncate', ['-s', '80M', image('c')]);
    sh('truncate', ['-s', '64M', image('d')]);
    sh('truncate', ['-s', '80M', image('e')]);
    // The source disk: 48 MiB, GPT, a BIOS boot partition and an ext4 holding one file.
    source = LoopDisk.create(48 * MiB, 'ferry-system-src-');
    sh('sfdisk', ['--quiet', source.device], `label: gpt\n,1M,${BIOS}\n,,${LINUX}\n`);
    source.rescan();
    sh('mkfs.ext4', ['-q', '-F', '-U', FS_UUID, '-L', 'data', source.part(2)]);
    writeFileSync(join(source.mount(source.part(2)), 'hello'), 'hello from the source\n');
    sh('umount', [join(source.part(2))]);
    recv = await start();
  }, 60_000);

  afterAll(async () => {
    await recv?.stop();
    source?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies a whole disk into a larger one and grows its last partition and ext4 on volume-done', async () => {
    const src = table(source.image);
    const layout: Layout = LayoutSchema.parse({
      version: 1,
      disks: [{
        name: 'c',
        sizeBytes: 48 * MiB,
        table: 'gpt',
        partitions: [
          { id: 'cp1', number: 1, startBytes: src.partitions[0]!.start * 512, sizeBytes: src.partitions[0]!.size * 512, type: BIOS, content: { kind: 'none' } },
          { id: 'cp2', number: 2, startBytes: src.partitions[1]!.start * 512, sizeBytes: src.partitions[1]!.size * 512, type: LINUX, content: { kind: 'filesystem', fsType: 'ext4', uuid: FS_UUID, label: 'data', mountPoint: '/' } },
        ],
      }],
    });
    const c = await SystemClient.open(recv.info, 'm3');
    const reply = await c.request({ op: 'layout', mode: 'block', layout });
    if (reply instanceof Error) throw reply;
    if (reply.op !== 'layout') throw new Error('not a layout reply');
    expect(reply.volumes).toEqual([{ id: 'c', kind: 'block', target: 'm3.c', sizeBytes: 80 * MiB, fsType: '', mountPoint: '', wholeDisk: true }]);
    // Block level mounts nothing; another migration is still kept off the disk while this session lives.
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
    const other = await SystemClient.open(recv.info, 'm5');
    const refused = await other.request({ op: 'layout', mode: 'block', layout });
    expect(refused instanceof Error && [(refused as { code?: string }).code, refused.message]).toEqual(['FERRY_DISK_IN_USE', 'receiver: disk c is laid out for migration m3, whose system session is open; the receiver will not write to it']);
    other.close();

    const copy = await runFerry(migrateArgs(recv.info, [`${source.image}=m3.c`]));
    expect(copy.code, copy.stderr).toBe(0);
    const done = await c.request({ op: 'volume-done', id: 'c' });
    if (done instanceof Error) throw done;
    expect(done.op === 'volume-done' && done.actions.map((a) => a.replace(/\/dev\/loop\d+/g, 'LOOP'))).toEqual([
      'GPT backup header of LOOP moved to the end of the disk',
      'partition 2 of LOOP grown to the end of the disk',
      'ext4 on LOOPp2 grown to its partition (e2fsck -fy, resize2fs)',
    ]);
    await c.end();

    const t = table(image('c'));
    expect(t.lastlba).toBe(80 * 2048 - 34);
    expect(t.partitions[1]!.start + t.partitions[1]!.size - 1).toBe(t.lastlba);
    withLoop(image('c'), (dev) => {
      sh('e2fsck', ['-fn', `${dev}p2`]);
      const dump = sh('dumpe2fs', ['-h', `${dev}p2`]);
      const blocks = Number(/Block count:\s+(\d+)/.exec(dump)![1]) * Number(/Block size:\s+(\d+)/.exec(dump)![1]);
      expect(blocks).toBeGreaterThan(t.partitions[1]!.size * 512 - 4 * MiB);
      expect(sh('blkid', ['-p', '-s', 'UUID', '-o', 'value', `${dev}p2`]).trim()).toBe(FS_UUID);
      expect(sh('debugfs', ['-R', 'cat /hello', `${dev}p2`])).toContain('hello from the source');
    });
  }, 120_000);

  it('copies partition by partition when the layout moves partitions: one block volume per partition, swap made and not copied', async () => {
    const layout = LayoutSchema.parse({
      version: 1,
      disks: [{
        name: 'd', sizeBytes: 64 * MiB, table: 'gpt',
        partitions: [
          { id: 'dp1', number: 1, sizeBytes: 1 * MiB, type: BIOS, content: { kind: 'none' } },
          { id: 'dp2', number: 2, sizeBytes: 16 * MiB, type: LINUX, content: { kind: 'filesystem', fsType: 'ext4', uuid: FS_UUID, mountPoint: '/' } },
          { id: 'dp3', number: 3, sizeBytes: 8 * MiB, type: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', content: { kind: 'swap', uuid: FS_UUID } },
        ],
      }],
    });
    const c = await SystemClient.open(recv.info, 'm7');
    const reply = await c.request({ op: 'layout', mode: 'block', layout });
    if (reply instanceof Error) throw reply;
    expect(reply.op === 'layout' && reply.volumes.map((v) => [v.id, v.kind, v.target, v.sizeBytes, v.fsType, v.wholeDisk ?? false])).toEqual([
      ['dp1', 'block', 'm7.dp1', 1 * MiB, '', false],
      ['dp2', 'block', 'm7.dp2', 16 * MiB, 'ext4', false],
    ]);
    withLoop(image('d'), (dev) => {
      expect(fsType(`${dev}p3`)).toBe('swap');
      // Block level copies file systems: none was made (blkid finds nothing: exit code 2).
      expect(fsType(`${dev}p2`)).toBe('');
    });
    await c.end();
  }, 120_000);

  it('grows an MBR disk whose last partition is a logical one: the extended partition first, then the logical one and its ext4', async () => {
    const src = LoopDisk.create(48 * MiB, 'ferry-system-src-mbr-');
    try {
      sh('sfdisk', ['--quiet', src.device], 'label: dos\n,8M,83\n,,5\n,,83\n');
      src.rescan();
      sh('partx', ['-a', '--nr', '5', src.device]);
      sh('mkfs.ext4', ['-q', '-F', '-U', FS_UUID, src.part(5)]);
      const t = table(src.image);
      const layout = LayoutSchema.parse({
        version: 1,
        disks: [{
          name: 'e', sizeBytes: 48 * MiB, table: 'dos',
          partitions: t.partitions.map((p, i) => ({
            id: `ep${[1, 2, 5][i]}`, number: [1, 2, 5][i], logical: i === 2, startBytes: p.start * 512, sizeBytes: p.size * 512, type: ['83', '5', '83'][i],
            content: i === 2 ? { kind: 'filesystem', fsType: 'ext4', uuid: FS_UUID, mountPoint: '/' } : { kind: 'none' },
          })),
        }],
      });
      const c = await SystemClient.open(recv.info, 'm6');
      const reply = await c.request({ op: 'layout', mode: 'block', layout });
      if (reply instanceof Error) throw reply;
      const copy = await runFerry(migrateArgs(recv.info, [`${src.image}=m6.e`]));
      expect(copy.code, copy.stderr).toBe(0);
      const done = await c.request({ op: 'volume-done', id: 'e' });
      if (done instanceof Error) throw done;
      expect(done.op === 'volume-done' && done.actions.map((a) => a.replace(/\/dev\/loop\d+/g, 'LOOP'))).toEqual([
        'extended partition 2 of LOOP grown to the end of the disk',
        'partition 5 of LOOP grown to the end of the disk',
        'ext4 on LOOPp5 grown to its partition (e2fsck -fy, resize2fs)',
      ]);
      await c.end();
      const grown = table(image('e')).partitions;
      expect(grown[1]!.start + grown[1]!.size).toBe(80 * 2048);
      expect(grown[2]!.start + grown[2]!.size).toBe(80 * 2048);
    } finally {
      src.destroy();
    }
  }, 120_000);

  it('after kill -9 with a layout mounted: the next receiver unmounts and detaches first, recognises the disks, and only a re-layout makes them anew', async () => {
    const layout = (size: number) =>
      LayoutSchema.parse({
        version: 1,
        disks: [{ name: 'd', sizeBytes: 64 * MiB, table: 'gpt', partitions: [{ id: 'dp1', number: 1, sizeBytes: size, type: LINUX, content: { kind: 'filesystem', fsType: 'ext4', uuid: FS_UUID, mountPoint: '/' } }] }],
      });
    const c = await SystemClient.open(recv.info, 'm4');
    const first = await c.request({ op: 'layout', mode: 'file', layout: layout(32 * MiB) });
    if (first instanceof Error) throw first;
    writeFileSync(join(data, 'systems/m4/root/copied'), 'copied before the crash\n');
    await recv.stop('SIGKILL');
    c.close();
    expect(mountsUnder(join(data, 'systems'))).toEqual([join(data, 'systems/m4/root')]);
    expect(loopOf(image('d'))).not.toBe('');

    recv = await start();
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
    expect(loopOf(image('d'))).toBe('');
    expect(recv.stderr()).toMatch(/unmounted what an earlier receiver left mounted/);

    const again = await SystemClient.open(recv.info, 'm4');
    const second = await again.request({ op: 'layout', mode: 'file', layout: layout(32 * MiB) });
    if (second instanceof Error) throw second;
    expect(second.op === 'layout' && second.state).toBe('recognised');
    expect(readFileSync(join(data, 'systems/m4/root/copied'), 'utf8')).toBe('copied before the crash\n');
    await again.end();

    const redo = await SystemClient.open(recv.info, 'm4');
    const third = await redo.request({ op: 'layout', mode: 'file', layout: layout(48 * MiB), relayout: true });
    if (third instanceof Error) throw third;
    expect(third.op === 'layout' && third.state).toBe('created');
    expect(table(image('d')).partitions[0]!.size * 512).toBe(48 * MiB);
    expect(() => readFileSync(join(data, 'systems/m4/root/copied'))).toThrow(/ENOENT/);

    // A receiver stopped with SIGTERM while a layout is mounted unmounts it and detaches its loop device.
    await recv.stop('SIGTERM');
    redo.close();
    expect(recv.child.signalCode ?? recv.child.exitCode).not.toBe('SIGKILL');
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
    expect(loopOf(image('d'))).toBe('');
    recv = await start();
    expect(recv.stderr()).not.toMatch(/earlier receiver left/);
  }, 120_000);
});
