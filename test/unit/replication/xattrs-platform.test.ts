// The Linux xattr addon (@napi-rs/xattr) has no Windows build: if any module
// the CLI imports statically imports it, every ferry command crashes at
// start-up on Windows. This follows the static import graph of the built CLI
// (dist/, what actually runs; `npm run build` first) — plus the dynamic
// imports through which the CLI loads a subcommand's implementation when it
// runs — and checks that the addon is reached only through xattrs.ts's
// dynamic, per-platform import.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadXattrs } from '../../../src/platform/xattrs.js';
import * as win from '../../../src/platform/xattrs-windows.js';

const DIST = fileURLToPath(new URL('../../../dist/', import.meta.url));
const STATIC = /(?:^|[\n;])\s*(?:import|export)\s+(?:[^;'"]*?\sfrom\s*)?['"]([^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
/** The one module allowed to reach the addon, through its platform choice. */
const XATTRS = resolve(DIST, 'platform/xattrs.js');

/**
 * Every module reachable from `entry` through static import/export-from and
 * literal dynamic import() (except xattrs.js's), with the chain that reached it.
 */
function staticGraph(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[entry, [entry]]]);
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    const text = readFileSync(file, 'utf8');
    const edges = [...text.matchAll(STATIC), ...(file === XATTRS ? [] : text.matchAll(DYNAMIC))];
    for (const m of edges) {
      const spec = m[1]!;
      const key = spec.startsWith('.') ? resolve(dirname(file), spec) : spec;
      if (seen.has(key)) continue;
      seen.set(key, [...seen.get(file)!, key]);
      if (spec.startsWith('.')) todo.push(key);
    }
  }
  return seen;
}

describe('xattr module platform split', () => {
  it('the CLI does not statically import @napi-rs/xattr (it would crash on Windows)', () => {
    const entry = resolve(DIST, 'cli/bin.js');
    expect(existsSync(entry), 'run npm run build first').toBe(true);
    const graph = staticGraph(entry);
    // Sanity: the graph does reach the file engine and the receiver.
    expect(graph.has(resolve(DIST, 'replication/file/tar-producer.js'))).toBe(true);
    expect(graph.has(resolve(DIST, 'receiver/file-extractor.js'))).toBe(true);
    const bad = [...graph.keys()].filter((k) => k.startsWith('@napi-rs/xattr') || k.endsWith('/xattrs-linux.js'));
    expect(bad.map((k) => graph.get(k)!.map((f) => f.replace(DIST, '')).join(' -> '))).toEqual([]);
  });

  it('loads the Linux implementation here and the Windows one reads nothing', async () => {
    const ops = await loadXattrs();
    expect(ops.readXattrs(Buffer.from('/'))).toBeInstanceOf(Map);
    expect(win.readXattrs(Buffer.from('C:\\x')).size).toBe(0);
    expect(() => win.writeXattrs(Buffer.from('C:\\x'), new Map())).not.toThrow();
    expect(() => win.writeXattrs(Buffer.from('C:\\x'), new Map([['user.a', Buffer.from('1')]]))).toThrow(/not supported on Windows/);
  });
});
