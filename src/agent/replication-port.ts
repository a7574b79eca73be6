// The replication port over the engines: block volumes go to runBlockPass
// (block/), file trees to runFilePass (file/), whose manifests live in the
// agent's manifest directory (forgotten on DELETE) and which never copies the
// agent's own data directory.

import { runBlockPass } from '../replication/block/pass.js';
import { runFilePass } from '../replication/file/pass.js';
import type { ReplicationPort } from './ports.js';

export function engineReplication(dirs: { manifestDir: string; dataDir: string }): ReplicationPort {
  return {
    async runPass(volume, options) {
      if (volume.kind === 'block') return runBlockPass(volume.source, volume.target, options);
      return runFilePass(volume.source, volume.target, {
        ...options,
        stateDir: dirs.manifestDir,
        excludes: volume.excludes,
        agentDataDir: dirs.dataDir,
      });
    },
  };
}
