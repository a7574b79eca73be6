// The replication port over the engines: block volumes go to runBlockPass
// (block/), file trees to the file engine when this build has it.

import { runBlockPass } from '../replication/block/pass.js';
import { FerryError } from '../errors.js';
import type { ReplicationPort } from './ports.js';

export function engineReplication(): ReplicationPort {
  return {
    async runPass(volume, options) {
      if (volume.kind === 'block') return runBlockPass(volume.source, volume.target, options);
      throw new FerryError('FERRY_UNSUPPORTED', `file-level replication of ${volume.source} is not available in this build of the agent`);
    },
  };
}
