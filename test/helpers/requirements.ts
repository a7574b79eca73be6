// What a test file needs from the machine (root, Debian tools). When a need
// is missing the file's tests are skipped with a printed reason — unless
// FERRY_REQUIRE_PRIVILEGED=1 (set by .ci/run), where the missing need is an
// error and the file fails. Usage:
//   const env = needs({ root: true, tools: ['sgdisk', 'mkfs.xfs'] });
//   describe.runIf(env.ok)('…', () => { … });

import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Needs {
  root?: boolean;
  tools?: string[];
  /** Files that must exist (firmware such as /usr/share/OVMF/OVMF_CODE_4M.fd). */
  files?: string[];
}

export interface NeedsResult {
  ok: boolean;
  missing: string[];
}

export function toolOnPath(name: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin'];
  return dirs.some((d) => {
    try {
      accessSync(join(d, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function needs(req: Needs): NeedsResult {
  const missing: string[] = [];
  if (req.root && (typeof process.getuid !== 'function' || process.getuid() !== 0)) missing.push('root');
  for (const t of req.tools ?? []) if (!toolOnPath(t)) missing.push(`tool ${t}`);
  for (const f of req.files ?? []) if (!existsSync(f)) missing.push(`file ${f}`);
  if (missing.length > 0) {
    const msg = `skipped: needs ${missing.join(', ')}`;
    if (process.env.FERRY_REQUIRE_PRIVILEGED === '1') {
      throw new Error(`${msg} (FERRY_REQUIRE_PRIVILEGED=1 turns this skip into a failure)`);
    }
    process.stderr.write(`${msg}\n`);
  }
  return { ok: missing.length === 0, missing };
}
