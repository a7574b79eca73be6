// The receiver lays out the test server as discovery sees it
// (test/helpers/system-lab.ts, discovery/linux/source-layout.ts) and as the
// agent plans it (layout/plan.ts) onto one larger and one smaller blank disk
// at file level: every file system and swap of the source is on the target
// with its type, UUID and label, the GPT types and names and the MBR types
// are the source's, the btrfs subvolumes and default subvolume are there,
// and the LVs became partitions.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverSourceLayout } from '../../src/discovery/linux/source-layout.js';
import { planTargetLayout } from '../../src/layout/plan.js';
import { startReceiver, type RunningReceiver } from '../helpers/block.js';
import { sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';
import { SYSTEM_LAB_TOOLS, blankImage, buildSourceServer, type SourceServer } from '../helpers/system-lab.js';
import { SystemClient } from '../helpers/system-client.js';

const MiB = 1024 * 1024;
const env = needs({ root: true, tools: [...SYSTEM_LAB_TOOLS, 'partx'] });

interface Table {
  label: string;
  partitions: Array<{ node: string; type: string; name?: string }>;
}
const table = (image: string) => (JSON.parse(sh('sfdisk', ['--json', image])) as { partitiontable: Table }).partitiontable;
const loopOf = (image: string) => sh('losetup', ['-j', image, '-O', 'NAME', '-n']).trim();
const probe = (dev: string) => Object.fromEntries(sh('blkid', ['-p', '-o', 'export', dev]).trim().split('\n').map((l) => l.split('=', 2) as [string, string]));

describe.runIf(env.ok)('laying out the discovered test server', () => {
  let dir: string;
  let lab: SourceServer;
  let recv: RunningReceiver;
  const images: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-system-lab-'));
    lab = await buildSourceServer(join(dir, 'source'));
    images.disk0 = blankImage(join(dir, 'targets'), 'disk0', 1200 * MiB);
    images.disk1 = blankImage(join(dir, 'targets'), 'disk1', 520 * MiB);
    recv = await startReceiver(join(dir, 'recv'), [], ['--disk', `disk0=${images.disk0}`, '--disk', `disk1=${images.disk1}`]);
  }, 120_000);

  afterAll(async () => {
    await recv?.stop();
    lab?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes every file system, swap, table entry and subvolume the source has', async () => {
    const { layout: source } = await discoverSourceLayout({ sourceRoot: lab.root, sourceDisks: lab.disks.map((d) => d.device) });
    const c = await SystemClient.open(recv.info, 'lab');
    const planned = planTargetLayout(source, c.disks, 'file');
    const reply = await c.request({ op: 'layout', mode: 'file', layout: planned });
    if (reply instanceof Error) throw reply;
    if (reply.op !== 'layout') throw new Error('not a layout reply');
    expect(reply.state).toBe('created');
    // One note per LV made a partition; and, since the source's btrfs is visible on this same machine,
    // mkfs.btrfs refuses its UUID: the target btrfs gets a new one, and the reply says so.
    const source5 = lab.parts.find((p) => p.fsType === 'btrfs')!;
    expect(reply.notes.filter((n) => /no device-mapper/.test(n))).toHaveLength(lab.vg.lvs.length);
    expect(reply.notes.filter((n) => n.includes(`btrfs UUID ${source5.uuid} is in use`))).toHaveLength(1);

    // Every file system and swap of the source, with its UUID (btrfs: the one the reply names) and label, on the target.
    const made = reply.layout.disks.flatMap((d) => d.partitions.map((p) => ({ disk: d.name, ...p })));
    const onTarget = made.filter((p) => p.content.kind === 'filesystem' || p.content.kind === 'swap').map((p) => {
      const k = probe(`${loopOf(images[p.disk]!)}p${p.number}`);
      expect(k.UUID).toBe(p.content.kind === 'none' || p.content.kind === 'lvm-pv' ? '' : p.content.uuid);
      return `${k.TYPE} ${k.TYPE === 'btrfs' ? 'new' : k.UUID} ${k.LABEL ?? ''}`;
    });
    const onSource = lab.parts.filter((p) => p.fsType !== '' && p.fsType !== 'LVM2_member').map((p) => `${p.fsType} ${p.fsType === 'btrfs' ? 'new' : p.uuid} ${p.label}`);
    expect(onTarget.sort()).toEqual(expect.arrayContaining(onSource.sort()));

    // The tables: GPT types and names as the source's, in order; MBR types of the source's partitions.
    const src0 = table(lab.disks[0]!.image);
    const dst0 = table(images.disk0!);
    expect(dst0.label).toBe('gpt');
    expect(dst0.partitions.map((p) => [p.type, p.name])).toEqual(src0.partitions.map((p) => [p.type, p.name]));
    const dst1 = table(images.disk1!);
    expect(dst1.label).toBe('dos');
    expect(dst1.partitions.map((p) => p.type).sort()).toEqual(expect.arrayContaining(['83', '5']));

    // Btrfs: the subvolumes and the default one.
    const btrfs = made.find((p) => p.content.kind === 'filesystem' && p.content.fsType === 'btrfs')!;
    const top = join(dir, 'recv/systems/lab/btrfs', btrfs.id);
    const subvols = sh('btrfs', ['subvolume', 'list', top]).trim().split('\n').map((l) => l.split(' path ')[1]);
    expect(subvols.sort()).toEqual(lab.btrfs.subvolumes.map((s) => s.path).sort());
    expect(sh('btrfs', ['subvolume', 'get-default', top])).toContain(`path ${lab.btrfs.defaultSubvolume}`);
    await c.end();
  }, 120_000);
});
