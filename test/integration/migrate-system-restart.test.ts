// A receiver killed (-9) during a whole-server migration, twice: right after
// it laid out the disks, and again in the middle of the copy. Each time it is
// started again and `ferry migrate --system` run again: the receiver
// recognises the layout it made (nothing is reformatted: a marker file put on
// a target file system after the first kill is still there at the end), and
// the final result is the same as an uninterrupted migration's — rsync finds
// nothing to change. The copy is slowed with --limit so that "the middle of
// the copy" is a place the test can reach; nothing here measures time.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/requirements.js';
import { startReceiver, type RunningReceiver } from '../helpers/block.js';
import { SYSTEM_LAB_TOOLS, blankImage, buildSourceServer, type SourceServer } from '../helpers/system-lab.js';
import { AttachedImage, ReadOnlyMounts, blkid, diffLabAndTarget, expectedUuids, migrateSystem, startMigration, systemArgs, type JsonLine } from '../helpers/system-migrate.js';

const env = needs({ root: true, tools: [...SYSTEM_LAB_TOOLS, 'rsync', 'partx'] });
const MIB = 1 << 20;
const ID = 'm-restart';

const layoutDone = (l: JsonLine) => l.type === 'step' && l.step === 'layout' && l.state === 'done';

describe.runIf(env.ok)('ferry migrate --system with the receiver killed and restarted', () => {
  let dir: string;
  let lab: SourceServer;
  let recv: RunningReceiver;
  let port: number;
  let args: string[];
  const images: string[] = [];
  const diskArgs: string[] = [];
  const attached: AttachedImage[] = [];
  let mounts: ReadOnlyMounts | undefined;
  const recvData = () => join(dir, 'receiver');

  async function killReceiver(): Promise<void> {
    await recv.stop('SIGKILL');
  }

  async function restartReceiver(): Promise<void> {
    recv = await startReceiver(recvData(), [], diskArgs, port);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-system-restart-'));
    lab = await buildSourceServer(join(dir, 'source'));
    images.push(blankImage(join(dir, 'target'), 'disk0', 1000 * MIB), blankImage(join(dir, 'target'), 'disk1', 600 * MIB));
    diskArgs.push(...images.flatMap((img, i) => ['--disk', `disk${i}=${img}`]));
    recv = await startReceiver(recvData(), [], diskArgs);
    port = recv.info.port;
    args = systemArgs(recv.info, { sourceRoot: lab.root, sourceDisks: lab.disks.map((d) => d.device), stateDir: join(dir, 'agent'), migrationId: ID });
  }, 90_000);

  afterAll(async () => {
    mounts?.release();
    for (const a of attached) a.release();
    await recv?.stop();
    lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('killed right after laying out: the agent fails; the marker put on the laid-out /boot stays', async () => {
    const m = startMigration([...args, '--limit', '40M']);
    await m.waitFor(layoutDone);
    await killReceiver();
    const r = await m.done;
    expect(r.code).not.toBe(0);
    expect(m.lines.find(layoutDone)?.detail).toMatch(/^created/);
    // The killed receiver left its target tree mounted: put a marker on the target's /boot through it.
    const boot = join(recvData(), 'systems', ID, 'root', 'boot');
    expect(existsSync(join(boot, 'lost+found'))).toBe(true); // the target ext4, not an empty directory
    writeFileSync(join(boot, 'ferry-marker'), 'laid out by the first run\n');
  });

  it('restarted and killed again in the middle of the copy: the layout was recognised, not made again', async () => {
    await restartReceiver();
    const m = startMigration([...args, '--limit', '40M']);
    // The third volume (after the BIOS boot partition and the ESP) has bytes acknowledged.
    await m.waitFor((l) => l.type === 'progress' && (l.volumeIndex as number) >= 2 && (l.doneBytes as number) > 0 && l.phase !== 'done');
    await killReceiver();
    const r = await m.done;
    expect(r.code).not.toBe(0);
    expect(m.lines.find(layoutDone)?.detail).toMatch(/^recognised/);
  });

  it('restarted once more: the run completes on the recognised layout, the marker is there, the copy is exact', async () => {
    await restartReceiver();
    const summary = await migrateSystem(args);
    expect(summary.layoutState).toBe('recognised');
    expect(summary.volumes.filter((v) => v.error)).toEqual([]);

    const disk0 = new AttachedImage(images[0]!, [1, 2, 3, 4, 5, 6]);
    const disk1 = new AttachedImage(images[1]!, [1, 5, 6]);
    attached.push(disk0, disk1);
    const target = (disk: string, n: number) => (disk === 'disk0' ? disk0 : disk1).part(n);
    const uuids = expectedUuids(lab, summary);
    for (const [id, uuid] of Object.entries(uuids)) {
      const [disk, n] = id.split('p') as [string, string];
      expect([id, blkid(target(disk, Number(n))).UUID]).toEqual([id, uuid]);
    }
    const m = (mounts = new ReadOnlyMounts(dir));
    const boot = lab.parts.find((p) => p.mountPoint === '/boot')!;
    expect(readFileSync(join(m.mount(target(boot.disk, boot.number), 'ext4'), 'ferry-marker'), 'utf8')).toBe('laid out by the first run\n');
    const diffs = diffLabAndTarget(lab, target, m, ['--exclude=/ferry-marker']);
    expect(diffs).toEqual(Object.fromEntries(Object.keys(diffs).map((k) => [k, ''])));
  });
});
