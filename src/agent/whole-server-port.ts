// The whole-server port over the flow (migration/whole-server.ts, the same
// one `ferry migrate --system` runs): the source is where the agent config
// says (`system.source_root`, `system.source_disks`), the flow's file
// manifests and read-only source mounts live under the agent's manifest
// directory (forgotten on DELETE), and a file pass never copies the agent's
// own data directory. Linux only.

import { runWholeServer } from '../migration/whole-server.js';
import type { WholeServerPort } from './ports.js';

export function wholeServerFlow(o: { stateDir: string; dataDir: string; sourceRoot: string; sourceDisks: string[] }): WholeServerPort {
  return {
    async run(r) {
      const s = await runWholeServer({
        receiver: r.receiver,
        migrationId: r.migrationId,
        mode: r.mode,
        sourceRoot: o.sourceRoot,
        ...(o.sourceDisks.length ? { sourceDisks: o.sourceDisks } : {}),
        targetServer: r.targetServer,
        relayout: r.relayout,
        stateDir: o.stateDir,
        agentDataDir: o.dataDir,
        verify: r.verify,
        // Not yet: the task's CONFIGURE_LINUX_* progress is not reported, so the daemon does not configure (docs/configure.md).
        configure: false,
        log: r.log,
        signal: r.signal,
        ...(r.gate ? { gate: r.gate } : {}),
        onStep: r.onStep,
        onProgress: r.onProgress,
      });
      return {
        layoutState: s.layoutState,
        volumes: s.volumes.map((v) => ({ id: v.id, kind: v.kind, target: v.target, summary: v.summary, ...(v.skipped ? { skipped: v.skipped } : {}) })),
      };
    },
  };
}
