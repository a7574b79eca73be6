// The whole-server port over the flow (migration/whole-server.ts, the same
// one `ferry migrate --system` runs): the source is where the agent config
// says (`system.source_root`, `system.source_disks`), the flow's file
// manifests and read-only source mounts live under the agent's manifest
// directory (forgotten on DELETE), and a file pass never copies the agent's
// own data directory. After every pass the receiver configures the copied
// system (`system.configure`, default true; `system.keep_static_network`).
// Linux only.

import { runWholeServer } from '../migration/whole-server.js';
import type { WholeServerPort } from './ports.js';

export function wholeServerFlow(o: { stateDir: string; dataDir: string; sourceRoot: string; sourceDisks: string[]; configure: boolean; keepStaticNetwork: boolean }): WholeServerPort {
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
        configure: o.configure,
        keepStaticNetwork: o.keepStaticNetwork,
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
