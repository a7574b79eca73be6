// Whole-server migration as a user runs it, for the integration tests:
// `ferry migrate --system` as a child process (its --progress-json lines
// read as they come, so a test can act at a given step), and the target
// disks inspected afterwards the way an operator would: the image attached
// read-only, `sfdisk --json`, `blkid -p`, file systems mounted read-only.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnFerry, type RunResult } from './cli.js';
import type { ReceiverInfo } from './block.js';
import { sh } from './loop.js';
import { rsyncDiff } from './file-tree.js';
import type { SourceServer } from './system-lab.js';
import { DEFAULT_EXCLUDED_CONTENTS } from '../../src/replication/file/excludes.js';

/** One line of `--progress-json`, or the final `--json` summary. */
export type JsonLine = Record<string, unknown> & { type?: string };

export interface SystemVolumeSummary {
  id: string;
  kind: 'file' | 'block';
  target: string;
  mountPoint: string;
  fsType: string;
  summary: { pass: 'full' | 'delta'; totalBytes: number; bytesOnWire: number; digest: string } | null;
  skipped?: string;
  error?: { code: string; message: string };
  actions?: string[];
}

export interface SystemSummary {
  migrationId: string;
  mode: 'file' | 'block';
  layoutState: 'created' | 'recognised';
  layout: { disks: { name: string; table: string; partitions: { id: string; number: number; sizeBytes: number; content: { kind: string; uuid?: string } }[] }[] };
  notes: string[];
  volumes: SystemVolumeSummary[];
}

/**
 * The UUID each file system of `lab` should carry on the target: the source's,
 * unless the receiver had to make it anew and said so in a note (mkfs.btrfs
 * refuses a UUID another btrfs on the same machine has: the lab's source is
 * beside the receiver). Keyed 'disk0p3'.
 */
export function expectedUuids(lab: SourceServer, summary: SystemSummary): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of lab.parts.filter((x) => x.uuid)) {
    const id = `${p.disk}p${p.number}`;
    const made = summary.layout.disks.flatMap((d) => d.partitions).find((x) => x.id === id)?.content.uuid ?? '';
    const explained = made !== p.uuid && summary.notes.some((n) => n.startsWith(`${id}:`) && n.includes(p.uuid) && n.includes(made));
    out[id] = explained ? made : p.uuid;
  }
  return out;
}

export interface RunningMigration {
  /** Every JSON line printed so far. */
  lines: JsonLine[];
  /** Resolves with the first line (so far or to come) that `pred` accepts; rejects if the process ends first. */
  waitFor(pred: (l: JsonLine) => boolean, timeoutMs?: number): Promise<JsonLine>;
  done: Promise<RunResult>;
  /** The `--json` summary (the last line without a type), once done. */
  summary(): SystemSummary | undefined;
}

/**
 * `ferry migrate --system` arguments. The labs of issue 15 are file systems, not
 * bootable systems: configure (on by default in ferry) is skipped unless
 * `configure: true` (the boot tests).
 */
export function systemArgs(r: ReceiverInfo, o: { sourceRoot: string; sourceDisks: string[]; stateDir: string; migrationId: string; extra?: string[]; configure?: boolean }): string[] {
  return [
    'migrate', '--system', '--to', `127.0.0.1:${r.port}`, '--token', r.token, '--fingerprint', r.fingerprint,
    '--source-root', o.sourceRoot, ...o.sourceDisks.flatMap((d) => ['--source-disk', d]),
    '--state', o.stateDir, '--migration-id', o.migrationId, '--json', '--progress-json', ...(o.configure ? [] : ['--no-configure']), ...(o.extra ?? []),
  ];
}

export function startMigration(args: string[], timeoutMs = 100_000): RunningMigration {
  const child = spawnFerry(args, { FERRY_LOG_LEVEL: 'info' });
  const lines: JsonLine[] = [];
  const waiters: { pred: (l: JsonLine) => boolean; resolve: (l: JsonLine) => void }[] = [];
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    const parts = (partial + s).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      if (!p.startsWith('{')) continue;
      const l = JSON.parse(p) as JsonLine;
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.pred(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<RunResult>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  child.stdin.end();
  return {
    lines,
    done,
    waitFor(pred, waitMs = 60_000) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise<JsonLine>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for a progress line; stderr: ${stderr.slice(-2000)}`)), waitMs);
        waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
        void done.then((r) => {
          clearTimeout(t);
          reject(new Error(`ferry migrate exited (${r.code}) first; stderr: ${r.stderr.slice(-2000)}`));
        });
      });
    },
    summary: () => lines.filter((l) => l.type === undefined).at(-1) as SystemSummary | undefined,
  };
}

/** Runs a migration to its end; throws with its stderr unless it exits 0. */
export async function migrateSystem(args: string[]): Promise<SystemSummary> {
  const m = startMigration(args);
  const r = await m.done;
  if (r.code !== 0) throw new Error(`ferry migrate --system exited ${r.code}: ${r.stderr.slice(-4000)}`);
  return m.summary()!;
}

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
  attrs?: string;
  bootable?: boolean;
}

export interface SfdiskTable {
  label: 'gpt' | 'dos';
  id: string;
  sectorsize?: number;
  partitions: SfdiskPartition[];
}

export function sfdiskJson(deviceOrImage: string): SfdiskTable {
  return (JSON.parse(sh('sfdisk', ['--json', deviceOrImage])) as { partitiontable: SfdiskTable }).partitiontable;
}

/** `blkid -p -o export` of one device as a record (TYPE, UUID, LABEL, …); {} when nothing is found. */
export function blkid(device: string): Record<string, string> {
  let out = '';
  try {
    out = execFileSync('blkid', ['-p', '-o', 'export', device], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return {};
  }
  return Object.fromEntries(out.trim().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Read-only mounts a test takes to look at file systems; `release()` unmounts them all. */
export class ReadOnlyMounts {
  private readonly mounts: string[] = [];
  private readonly dir: string;

  constructor(scratch: string) {
    this.dir = mkdtempSync(join(scratch, 'inspect-'));
  }

  /** Mounts a device read-only (xfs: nouuid, as its twin may be mounted too; ext4: noload, nothing replayed). */
  mount(device: string, fsType: string, options: string[] = []): string {
    const mnt = mkdtempSync(join(this.dir, 'mnt-'));
    const opts = ['ro', ...(fsType === 'xfs' ? ['nouuid'] : []), ...(fsType === 'ext4' ? ['noload'] : []), ...options];
    sh('mount', ['-t', fsType, '-o', opts.join(','), device, mnt]);
    this.mounts.push(mnt);
    return mnt;
  }

  /**
   * One mounted file system on its own (a non-recursive bind, read-only):
   * the kernel refuses a second read-only mount of a device mounted read-write.
   */
  bind(path: string): string {
    const mnt = mkdtempSync(join(this.dir, 'bind-'));
    sh('mount', ['--bind', path, mnt]);
    this.mounts.push(mnt);
    sh('mount', ['-o', 'remount,bind,ro', mnt]);
    return mnt;
  }

  release(): void {
    for (const m of this.mounts.splice(0).reverse()) {
      try {
        sh('umount', [m]);
      } catch {
        /* already gone */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A target disk image attached read-only with its partitions' nodes made; `release()` detaches it. */
export class AttachedImage {
  readonly device: string;

  constructor(image: string, parts: number[]) {
    this.device = sh('losetup', ['--find', '--show', '--read-only', '--partscan', image]).trim();
    try {
      sh('partx', ['-u', this.device]);
    } catch {
      /* the nodes are added one by one below */
    }
    for (const n of parts) {
      if (!existsSync(this.part(n))) sh('partx', ['-a', '-n', `${n}:${n}`, this.device]);
      for (let i = 0; i < 100 && !existsSync(this.part(n)); i++) execFileSync('sleep', ['0.05']);
    }
  }

  part(n: number): string {
    return `${this.device}p${n}`;
  }

  release(): void {
    try {
      sh('losetup', ['-d', this.device]);
    } catch {
      /* already detached */
    }
  }
}

/** rsync patterns for what the file engine leaves out by design in the file system mounted at `mountPoint`: the contents of /tmp, /mnt … */
function engineExcludes(mountPoint: string): string[] {
  return DEFAULT_EXCLUDED_CONTENTS.filter((d) => mountPoint === '/' || d.startsWith(`${mountPoint}/`)).map((d) => `--exclude=${mountPoint === '/' ? d : d.slice(mountPoint.length)}/*`);
}

/**
 * rsync between each file system of the lab source and its copy on the
 * target images (attached read-only), keyed by mount point ('btrfs:@home'
 * for subvolumes): '' where nothing differs. The source's file systems are
 * looked at on their own (non-recursive binds; the btrfs top level mounted
 * again), so a directory a mount hides is compared too. Left out, as the
 * file engine leaves them out by design: lost+found (mkfs made the
 * target's) and the contents of /tmp, /mnt … (DEFAULT_EXCLUDED_CONTENTS).
 */
export function diffLabAndTarget(lab: SourceServer, target: (disk: string, n: number) => string, m: ReadOnlyMounts, extra: string[] = []): Record<string, string> {
  const diffs: Record<string, string> = {};
  for (const p of lab.parts.filter((x) => x.fsType === 'ext4' || x.fsType === 'xfs')) {
    const src = m.bind(lab.mounts.find((x) => x.device === p.device)!.path);
    const dst = m.mount(target(p.disk, p.number), p.fsType);
    diffs[p.mountPoint] = rsyncDiff(src, dst, ['--exclude=/lost+found', ...engineExcludes(p.mountPoint), ...extra]);
  }
  const btrfs = lab.parts.find((p) => p.fsType === 'btrfs')!;
  const dstTop = m.mount(target(btrfs.disk, btrfs.number), 'btrfs', ['subvolid=5']);
  const srcTop = m.mount(btrfs.device, 'btrfs', ['subvolid=5']);
  for (const sub of ['', ...lab.btrfs.subvolumes.map((s) => s.path)]) {
    // -x: the top level's comparison stops at the subvolumes, which are compared on their own.
    const mountPoint = lab.btrfs.subvolumes.find((s) => s.path === sub)?.mountPoint ?? '';
    diffs[`btrfs:${sub || '(top level)'}`] = rsyncDiff(sub ? join(srcTop, sub) : srcTop, sub ? join(dstTop, sub) : dstTop, ['-x', ...(mountPoint ? engineExcludes(mountPoint) : []), ...extra]);
  }
  return diffs;
}
