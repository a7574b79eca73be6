// The system session's 'configure' request (layout/system-session.ts) on a
// laid-out system: at file level the target tree is already mounted under the
// staging root; at block level nothing is kept mounted, so the tree is
// mounted there for configure (partition nodes refreshed first: a block copy
// may have brought the source's table) and unmounted afterwards, whatever
// happens. Must not touch: the session's own mounts and targets (system-kind.ts).

import type { Logger } from '../../platform/log.js';
import type { Layout } from '../../layout/model.js';
import { rereadPartitions } from '../system/block-devices.js';
import type { LaidOutSystem } from '../system/lay-out.js';
import { planMounts } from '../system/mount-plan.js';
import { MountStack } from '../system/mounts.js';
import type { SystemPaths } from '../system/system-paths.js';
import { configureSystem, type ConfigureResult } from './configure-system.js';

export async function configureLaidOut(system: LaidOutSystem, requested: Layout, paths: SystemPaths, keepStaticNetwork: boolean, log: Logger): Promise<ConfigureResult> {
  const input = { root: paths.root, requested, made: system.made, devices: system.devices, diskDevices: system.diskDevices, keepStaticNetwork, log };
  if (system.mode === 'file') return configureSystem(input);
  const mounts = new MountStack();
  try {
    for (const d of system.made.disks) {
      const dev = system.diskDevices.get(d.name);
      if (dev) await rereadPartitions(dev, d.partitions.map((p) => p.number));
    }
    for (const m of planMounts(system.made, system.devices, paths)) await mounts.mount(m.device, m.dir, m.options);
    return await configureSystem(input);
  } finally {
    await mounts.unmountAll(log);
  }
}
