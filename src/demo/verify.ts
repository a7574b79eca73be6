// Checking the demo's copy against its source after a pass: file level with
// rsync's own opinion (`rsync -aHAX --numeric-ids --dry-run
// --itemize-changes --delete` must list nothing) or, without rsync, a walk
// of both trees in node comparing types, modes, owners, sizes, mtimes, link
// targets and SHA-256 of file contents; block level by SHA-256 of the source
// and the target image. Reads only.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { DEFAULT_EXCLUDED_CONTENTS } from '../replication/file/excludes.js';
import { exec } from '../platform/exec.js';
import { ExecError } from '../errors/ferry-error.js';

export interface Verification {
  ok: boolean;
  method: 'rsync' | 'node-digest' | 'sha256';
  /** What differs (at most 20 lines), empty when ok. */
  differences: string[];
  source_sha256?: string;
  target_sha256?: string;
}

/** rsync patterns for what the file engine leaves out by design below `root`. */
function rsyncExcludes(root: string): string[] {
  const out = ['--exclude=/lost+found'];
  for (const p of DEFAULT_EXCLUDED_CONTENTS) {
    const r = relative(resolve(root), p);
    if (r === '') out.push('--exclude=/*');
    else if (!r.startsWith('..') && !isAbsolute(r)) out.push(`--exclude=/${r}/*`);
  }
  return out;
}

export async function verifyFiles(source: string, target: string): Promise<Verification> {
  const args = ['-aHAX', '--numeric-ids', '--dry-run', '--itemize-changes', '--delete', ...rsyncExcludes(source), `${source.replace(/\/+$/, '')}/`, `${target}/`];
  try {
    const r = await exec('rsync', args, { timeoutMs: 30 * 60_000, okCodes: [0, 23, 24] });
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    const problems = r.exitCode === 0 ? [] : [`rsync exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`];
    const differences = [...problems, ...lines].slice(0, 20);
    return { ok: differences.length === 0, method: 'rsync', differences };
  } catch (e) {
    if (e instanceof ExecError && e.code === 'FERRY_TOOL_MISSING') return compareTrees(source, target);
    throw e;
  }
}

export async function verifyBlock(source: string, target: string): Promise<Verification> {
  const [s, t] = await Promise.all([sha256File(source), sha256File(target)]);
  const differences = s.hash === t.hash ? [] : [`sha256 differs: source ${s.hash} (${s.bytes} bytes), target ${t.hash} (${t.bytes} bytes)`];
  return { ok: differences.length === 0, method: 'sha256', differences, source_sha256: s.hash, target_sha256: t.hash };
}

export async function sha256File(path: string): Promise<{ hash: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    h.update(chunk);
    bytes += chunk.length;
  }
  return { hash: h.digest('hex'), bytes };
}

/** The fallback without rsync: both trees walked in sorted order. */
async function compareTrees(source: string, target: string): Promise<Verification> {
  const excluded = new Set(['lost+found']);
  const contentsOf = new Set<string>();
  for (const p of DEFAULT_EXCLUDED_CONTENTS) {
    const r = relative(resolve(source), p);
    if (!r.startsWith('..') && !isAbsolute(r)) contentsOf.add(r);
  }
  const differences: string[] = [];
  const note = (s: string) => {
    if (differences.length < 20) differences.push(s);
  };
  const walk = async (rel: string): Promise<void> => {
    const [a, b] = await Promise.all([listDir(join(source, rel)), listDir(join(target, rel))]);
    const skipAll = contentsOf.has(rel);
    for (const name of [...new Set([...a, ...b])].sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skipAll || (rel === '' && excluded.has(name))) continue;
      if (!a.includes(name)) {
        note(`extra in target: ${r}`);
        continue;
      }
      if (!b.includes(name)) {
        note(`missing in target: ${r}`);
        continue;
      }
      const [sa, sb] = await Promise.all([lstat(join(source, r)), lstat(join(target, r))]);
      const kind = (s: typeof sa) => (s.isDirectory() ? 'd' : s.isSymbolicLink() ? 'l' : s.isFile() ? 'f' : 'o');
      if (kind(sa) !== kind(sb)) {
        note(`type differs: ${r}`);
        continue;
      }
      if (!sa.isSymbolicLink() && sa.mode !== sb.mode) note(`mode differs: ${r}`);
      if (sa.uid !== sb.uid || sa.gid !== sb.gid) note(`owner differs: ${r}`);
      if (sa.isSymbolicLink()) {
        if ((await readlink(join(source, r))) !== (await readlink(join(target, r)))) note(`link target differs: ${r}`);
      } else if (sa.isFile()) {
        if (sa.size !== sb.size) note(`size differs: ${r}`);
        else if (Math.floor(sa.mtimeMs / 1000) !== Math.floor(sb.mtimeMs / 1000)) note(`mtime differs: ${r}`);
        else if ((await sha256File(join(source, r))).hash !== (await sha256File(join(target, r))).hash) note(`content differs: ${r}`);
      } else if (sa.isDirectory()) {
        await walk(r);
      }
    }
  };
  await walk('');
  return { ok: differences.length === 0, method: 'node-digest', differences };
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
