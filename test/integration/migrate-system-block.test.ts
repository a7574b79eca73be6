// `ferry migrate --system --mode block` onto a larger disk: a one-disk
// source server (GPT: /boot ext4, / ext4 last) on a loop device, mounted at
// a source root; a real `ferry receive --disk` child with a blank image disk
// 200 MiB larger. The whole disk is copied as bytes (the source's geometry
// kept), then the receiver moves the GPT backup header to the new end, grows
// the last partition and its file system: the target's table shows the same
// partitions with the last one larger, `df` on it shows the grown file
// system, UUIDs and labels are the source's, and rsync finds nothing to change.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/requirements.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { rsyncDiff } from '../helpers/file-tree.js';
import { startReceiver, type RunningReceiver } from '../helpers/block.js';
import { blankImage } from '../helpers/system-lab.js';
import { AttachedImage, ReadOnlyMounts, blkid, migrateSystem, sfdiskJson, systemArgs } from '../helpers/system-migrate.js';

const env = needs({ root: true, tools: ['sfdisk', 'partx', 'mkfs.ext4', 'resize2fs', 'e2fsck', 'rsync', 'blkid'] });
const MIB = 1 << 20;

describe.runIf(env.ok)('ferry migrate --system --mode block', () => {
  let dir: string;
  let disk: LoopDisk;
  let root: string;
  let image: string;
  let recv: RunningReceiver;
  let attached: AttachedImage | undefined;
  let mounts: ReadOnlyMounts | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-system-block-'));
    disk = LoopDisk.create(400 * MIB, 'ferry-system-block-src-');
    sh('sfdisk', ['-q', disk.device], 'label: gpt\nsize=100MiB, name="boot"\nname="root"\n');
    disk.rescan();
    for (let i = 0; i < 100 && !existsSync(disk.part(2)); i++) sh('sleep', ['0.05']);
    sh('mkfs.ext4', ['-q', '-F', '-L', 'boot', disk.part(1)]);
    sh('mkfs.ext4', ['-q', '-F', '-L', 'root', disk.part(2)]);
    root = join(dir, 'root');
    mkdirSync(root);
    sh('mount', [disk.part(2), root]);
    mkdirSync(join(root, 'boot'));
    sh('mount', [disk.part(1), join(root, 'boot')]);
    mkdirSync(join(root, 'usr-doc'));
    for (const d of readdirSync('/usr/share/doc').sort().slice(0, 20)) sh('cp', ['-a', join('/usr/share/doc', d), join(root, 'usr-doc')]);
    symlinkSync('usr-doc', join(root, 'doc'));
    writeFileSync(join(root, 'boot', 'vmlinuz'), 'not a kernel\n'.repeat(1000));
    sh('sync', []);
    image = blankImage(join(dir, 'target'), 'disk0', 600 * MIB);
    recv = await startReceiver(join(dir, 'receiver'), [], ['--disk', `disk0=${image}`]);
  }, 60_000);

  afterAll(async () => {
    mounts?.release();
    attached?.release();
    await recv?.stop();
    for (const m of [join(root, 'boot'), root]) {
      try {
        sh('umount', [m]);
      } catch {
        /* not mounted */
      }
    }
    disk?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('copies the whole disk, then grows the last partition and its file system into the larger disk', async () => {
    const summary = await migrateSystem(systemArgs(recv.info, { sourceRoot: root, sourceDisks: [disk.device], stateDir: join(dir, 'agent'), migrationId: 'm-block', extra: ['--mode', 'block'] }));
    expect(summary.layoutState).toBe('created');
    expect(summary.volumes.map((v) => [v.id, v.kind, v.summary?.totalBytes])).toEqual([['disk0', 'block', 400 * MIB]]);
    expect(summary.volumes[0]!.actions?.join(' ')).toMatch(/resize2fs|grew|grown/i);

    const src = sfdiskJson(disk.device);
    const dst = sfdiskJson(image);
    expect(dst.label).toBe('gpt');
    expect(dst.id).toBe(src.id);
    expect(dst.partitions.map((p) => [p.start, p.uuid, p.name, p.type])).toEqual(src.partitions.map((p) => [p.start, p.uuid, p.name, p.type]));
    expect(dst.partitions[0]!.size).toBe(src.partitions[0]!.size);
    expect(dst.partitions[1]!.size).toBeGreaterThanOrEqual(src.partitions[1]!.size + 190 * 2048); // ~200 MiB more, in sectors

    attached = new AttachedImage(image, [1, 2]);
    for (const n of [1, 2]) {
      const [s, t] = [blkid(disk.part(n)), blkid(attached.part(n))];
      expect([t.TYPE, t.UUID, t.LABEL]).toEqual([s.TYPE, s.UUID, s.LABEL]);
    }
    const m = (mounts = new ReadOnlyMounts(dir));
    const target = m.mount(attached.part(2), 'ext4');
    // df: the target's / is larger than the source's by about the 200 MiB the disk grew.
    const size = (p: string) => {
      const st = statfsSync(p);
      return st.blocks * st.bsize;
    };
    expect(size(target)).toBeGreaterThan(size(root) + 150 * MIB);
    const srcRoot = m.bind(root);
    expect(rsyncDiff(srcRoot, target)).toBe('');
    expect(rsyncDiff(m.bind(join(root, 'boot')), m.mount(attached.part(1), 'ext4'))).toBe('');
  });
});
