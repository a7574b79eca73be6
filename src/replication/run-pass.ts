// The one place that picks the engine for a volume: block volumes go to
// runBlockPass (block/pass.ts), file trees to runFilePass (file/pass.ts).
// `ferry migrate` and the agent's replication port both call it. Each engine
// is loaded on first use, so a run that copies only file trees never loads
// the block engine, and the CLI's start-up loads neither.

import type { PassOptions, PassSummary, VolumePlan } from './types.js';
import type { PassWorkers } from './file/pass-workers.js';

/** What a file-tree pass needs besides the volume and the pass options. */
export interface FileTreeSettings {
  /** Where the agent keeps its file manifests between passes. */
  stateDir: string;
  /** The agent's own data directory, never copied. */
  agentDataDir?: string;
  /** Send everything, whatever the manifest of the last pass says. */
  full?: boolean;
  /** Worker threads shared by the file passes of one run (fileWorkers), closed by the run; default: each full pass its own. */
  workers?: PassWorkers;
}

/**
 * Worker threads for the file passes of one run (a whole server's volumes), one pool for all of them;
 * the caller closes it once every pass ended. Loaded here, like the engines, on first use.
 */
export async function fileWorkers(): Promise<PassWorkers> {
  const { PassWorkers } = await import('./file/pass-workers.js');
  return new PassWorkers();
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
    ...(files.workers ? { workers: files.workers } : {}),
  });
}
