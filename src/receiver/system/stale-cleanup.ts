// What a receiver killed during a system session leaves behind, undone when
// the next one starts and before it listens: mounts under DATA/systems/
// (deepest first) and loop devices over its --disk image files. Nothing
// else: a loop device over one of those files that still holds a mount
// elsewhere is left alone (the disk guard then refuses the disk, naming it).

import type { Logger } from '../../platform/log.js';
import { detachLoop, loopsBacking } from './block-devices.js';
import { isImageFile, type DiskSpec } from './disks.js';
import { unmountStale } from './mounts.js';
import { systemsDir } from './system-paths.js';

export async function cleanStaleSystems(dataDir: string, disks: DiskSpec[], log: Logger): Promise<void> {
  const unmounted = await unmountStale(systemsDir(dataDir), log);
  if (unmounted.length > 0) log.warn({ mounts: unmounted }, 'unmounted what an earlier receiver left mounted under its data directory');
  for (const d of disks) {
    if (!(await isImageFile(d).catch(() => false))) continue;
    for (const loop of await loopsBacking(d.path)) {
      try {
        await detachLoop(loop);
        log.warn({ disk: d.name, loop }, 'detached a loop device an earlier receiver left over its disk image');
      } catch (e) {
        log.warn({ disk: d.name, loop, err: (e as Error).message }, 'a loop device over a disk image could not be detached');
      }
    }
  }
}
