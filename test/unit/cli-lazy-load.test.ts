// Every `ferry` run (even --version) loads the modules the CLI imports
// statically. Subcommands load their implementation inside their action, so
// the static graph of the built CLI (dist/; `npm run build` first) must stay
// free of the engines, the agent, the receiver, the control plane and their
// heavy dependencies.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
const STATIC = /(?:^|[\n;])\s*(?:import|export)\s+(?:[^;'"]*?\sfrom\s*)?['"]([^'"]+)['"]/g;

function staticGraph(entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    for (const m of readFileSync(file, 'utf8').matchAll(STATIC)) {
      const spec = m[1]!;
      const key = spec.startsWith('.') ? resolve(dirname(file), spec) : spec;
      if (seen.has(key)) continue;
      seen.add(key);
      if (spec.startsWith('.')) todo.push(key);
    }
  }
  return seen;
}

describe('CLI start-up', () => {
  it('imports no subcommand implementation statically', () => {
    const entry = resolve(DIST, 'cli/bin.js');
    expect(existsSync(entry), 'run npm run build first').toBe(true);
    const graph = [...staticGraph(entry)].map((k) => (k.startsWith(DIST) ? k.slice(DIST.length) : k));
    expect(graph).toContain('cli/migrate.js');
    const heavy = graph.filter((k) => /^(replication|receiver|agent|sms-server|discovery|demo\/lab|sms-client\/client)\b/.test(k) || /^(zod|yaml|pino|undici|node-cron|systeminformation|lz4-napi|tar-stream|selfsigned|xxhash-wasm)$/.test(k));
    expect(heavy).toEqual([]);
  });

  // Issue 14: a delta pass of a /usr tree takes about 1.1 s when nothing changed; all of zod (95 ES
  // modules, 119-357 ms to load on the 2-core VM) was part of it (the frame schemas are zod/mini,
  // bundled into frame-schemas.js). `ferry migrate` loads pino only to write a record
  // (platform/deferred-logger.ts, tested on its own).
  it("loads a file pass's modules without all of zod and without pino", () => {
    const graph = [...staticGraph(resolve(DIST, 'replication/file/pass.js'))];
    expect(graph.filter((k) => k === 'zod' || k === 'pino' || k.endsWith('/platform/log.js'))).toEqual([]);
  });
});
