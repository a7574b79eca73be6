// How ferry starts another ferry process of its own (the demo's children, the
// command a service unit runs). Owns FERRY_LAUNCHER; must not spawn anything.
//
// A packaged ferry runs node through its bundled loader
// (runtime/ld-linux-x86-64.so.2 --library-path runtime/lib runtime/node …,
// see packaging/ferry-launcher.sh), so process.execPath (/proc/self/exe) is
// that loader: `process.execPath bin.js` would fail, or run the host's libc.
// The launcher exports FERRY_LAUNCHER (the path it was started as); ferry
// starts itself again through it. bin.ts hands the variable over at start-up
// and it leaves the environment, so no tool ferry runs (blkid, lsblk, … and
// systeminformation's children) inherits anything the bundle set.

import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';

let adopted: string | undefined;

function usable(path: string | undefined): string | undefined {
  return path && isAbsolute(path) && existsSync(path) ? path : undefined;
}

/** Takes FERRY_LAUNCHER out of the environment and remembers it (called once by bin.ts). */
export function adoptLauncher(env: NodeJS.ProcessEnv = process.env): void {
  adopted = usable(env.FERRY_LAUNCHER) ?? adopted;
  delete env.FERRY_LAUNCHER;
}

/** The packaged launcher this ferry was started through, if any. */
export function ferryLauncher(): string | undefined {
  return adopted ?? usable(process.env.FERRY_LAUNCHER);
}

/**
 * V8's heap sizes among node's own flags (`--max-semi-space-size=4`, which
 * packaging/ferry-launcher.sh and the Windows ferry.cmd give every ferry):
 * kept when ferry starts itself as node + script, so that a service
 * installed from such a ferry (WinSW runs node.exe itself) runs with them.
 */
export function heapFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return execArgv.filter((a) => /^--max-(semi|old)-space-size=\d+$/.test(a));
}

/**
 * The command that starts this very ferry: the launcher; else, for a script
 * run by node (a source checkout, tests, Windows), node, its heap flags and
 * that script; else the single executable itself (whose bundled code has no
 * bin.js on disk).
 */
export function selfCommand(script: string | undefined, execArgv: readonly string[] = process.execArgv): string[] {
  const launcher = ferryLauncher();
  if (launcher) return [launcher];
  if (script && /\.(c|m)?js$/.test(script) && existsSync(script)) return [process.execPath, ...heapFlags(execArgv), script];
  return [process.execPath];
}
