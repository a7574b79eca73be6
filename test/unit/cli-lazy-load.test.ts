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
});
