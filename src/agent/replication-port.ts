// The replication port over the engines (replication/run-pass.ts picks
// block/ or file/ for each volume). File manifests live in the agent's
// manifest directory (forgotten on DELETE), and a file pass never copies the
// agent's own data directory.

import { runPass } from '../replication/run-pass.js';
import type { ReplicationPort } from './ports.js';

export function engineReplication(dirs: { manifestDir: string; dataDir: string }): ReplicationPort {
  return {
    runPass: (volume, options) => runPass(volume, options, { stateDir: dirs.manifestDir, agentDataDir: dirs.dataDir }),
  };
}
