// Growing a file system that a block copy brought into a larger partition
// (receiver/system/grow.ts, what 'volume-done' runs): xfs and btrfs on a
// temporary mount, ext4 after a forced check; each ends at its partition's
// size, keeps its UUID and data, and leaves nothing mounted.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { growFileSystem } from '../../src/receiver/system/grow.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';

const MiB = 1024 * 1024;
const env = needs({ root: true, tools: ['sfdisk', 'mkfs.xfs', 'mkfs.btrfs', 'mkfs.ext4', 'xfs_growfs', 'btrfs', 'resize2fs', 'e2fsck', 'blkid'] });

describe.runIf(env.ok)('growing a copied file system to its larger partition', () => {
  let disk: LoopDisk;
  const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8');

  beforeAll(() => {
    disk = LoopDisk.create(1024 * MiB, 'ferry-grow-');
    sh('sfdisk', ['--quiet', disk.device], 'label: gpt\n,400M\n,300M\n,100M\n');
    disk.rescan();
  });
  afterAll(() => disk?.destroy());

  /** Bytes the file system on `dev` spans, as its own tools say. */
  async function fsBytes(type: string, dev: string): Promise<number> {
    if (type === 'ext4') {
      const d = sh('dumpe2fs', ['-h', dev]);
      return Number(/Block count:\s+(\d+)/.exec(d)![1]) * Number(/Block size:\s+(\d+)/.exec(d)![1]);
    }
    const dir = disk.mount(dev, type === 'xfs' ? ['nouuid'] : []);
    try {
      if (type === 'xfs') {
        const [, bsize, blocks] = /data\s+=\s+bsize=(\d+)\s+blocks=(\d+)/.exec(sh('xfs_info', [dir]))!;
        return Number(bsize) * Number(blocks);
      }
      return Number(/Device size:\s+(\d+)/.exec(sh('btrfs', ['filesystem', 'usage', '-b', dir]))![1]);
    } finally {
      sh('umount', [dir]);
    }
  }

  it.each([
    ['xfs', 1, ['mkfs.xfs', '-f', '-q', '-d', 'size=300m'], 400],
    ['btrfs', 2, ['mkfs.btrfs', '-f', '-q', '-b', '150m'], 300],
    ['ext4', 3, ['mkfs.ext4', '-F', '-q'], 100],
  ] as const)('%s', async (type, n, mkfs, partMiB) => {
    const dev = disk.part(n);
    if (type === 'ext4') sh(mkfs[0], [...mkfs.slice(1), dev, '50M']);
    else sh(mkfs[0], [...mkfs.slice(1), dev]);
    const uuid = sh('blkid', ['-p', '-s', 'UUID', '-o', 'value', dev]).trim();
    const dir = disk.mount(dev, type === 'xfs' ? ['nouuid'] : []);
    writeFileSync(join(dir, 'kept'), type);
    sh('umount', [dir]);
    const before = await fsBytes(type, dev);
    expect(before).toBeLessThan((partMiB - 40) * MiB);

    const actions = await growFileSystem(dev, join(disk.image, '..', `grow-${type}`));
    expect(actions).toHaveLength(1);
    expect(actions[0]).toContain(`${type} on ${dev} grown to its partition`);
    expect(await fsBytes(type, dev)).toBeGreaterThan((partMiB - 4) * MiB);
    expect(sh('blkid', ['-p', '-s', 'UUID', '-o', 'value', dev]).trim()).toBe(uuid);
    const check = disk.mount(dev, type === 'xfs' ? ['nouuid'] : []);
    expect(readFileSync(join(check, 'kept'), 'utf8')).toBe(type);
    sh('umount', [check]);
    expect(mounts()).not.toContain('grow-');
  }, 60_000);
});
