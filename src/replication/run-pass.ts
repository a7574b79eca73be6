// The one place that picks the engine for a volume: block volumes go to
// runBlockPass (block/pass.ts), file trees to runFilePass (file/pass.ts).
// `ferry migrate` and the agent's replication port both call it. Each engine
// is loaded on first use, so a run that copies only file trees never loads
// the block engine, and the CLI's start-up loads neither.

import type { PassOptions, PassSummary, VolumePlan } from './types.js';

/** What a file-tree pass needs besides the volume and the pass options. */
export interface FileTreeSettings {
  /** Where the agent keeps its file manifests between passes. */
  stateDir: string;
  /** The agent's own data directory, never copied. */
  agentDataDir?: string;
  /** Send everything, whatever the manifest of the last pass says. */
  full?: boolean;
}

/** Runs one pass of `volume` with the engine of its kind. */
export async function runPass(volume: VolumePlan, options: PassOptions, files: FileTreeSettings): Promise<PassSummary> {
  if (volume.kind === 'block') {
    const { runBlockPass } = await import('./block/pass.js');
    return runBlockPass(volume.source, volume.target, options);
  }
  const { runFilePass } = await import('./file/pass.js');
  return runFilePass(volume.source, volume.target, {
    ...options,
    stateDir: files.stateDir,
    excludes: volume.excludes,
    ...(files.agentDataDir === undefined ? {} : { agentDataDir: files.agentDataDir }),
    ...(files.full === undefined ? {} : { full: files.full }),
  });
}
