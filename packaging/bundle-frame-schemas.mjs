#!/usr/bin/env node
// Build step after tsc (npm run build, packaging/build.sh): bundles
// DIST/protocol/frame-schemas.js in place with the parts of zod/mini it
// uses, so that loading the block frames' schemas costs one 46 KB file
// instead of zod's 95 ES modules (7–16 ms against 108–220 ms on the 2-core
// VM; the reasons are in src/protocol/frame-schemas.ts). Only zod is pulled
// in: relative imports (errors/) stay imports of the other compiled files.
// esbuild is pinned (package.json: 0.28.2, not ^): what this step emits
// is shipped code, so a new esbuild must be a deliberate change.
// Usage: node packaging/bundle-frame-schemas.mjs [DIST]   (default: dist)

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const dist = resolve(process.argv[2] ?? 'dist');
// zod comes from this repository's node_modules, wherever DIST is (packaging/build.sh compiles into a staging directory).
const modules = join(dirname(dirname(fileURLToPath(import.meta.url))), 'node_modules');
const file = join(dist, 'protocol', 'frame-schemas.js');
if (!existsSync(file)) {
  process.stderr.write(`bundle-frame-schemas: ${file} is missing: run tsc first\n`);
  process.exit(1);
}
await build({
  entryPoints: [file],
  outfile: file,
  allowOverwrite: true,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  treeShaking: true,
  nodePaths: [modules],
  // tsc's source map of this file, chained through when there is one (npm run build; not packaging).
  sourcemap: existsSync(`${file}.map`),
  logLevel: 'warning',
  plugins: [
    {
      name: 'relative-stays-external',
      setup(b) {
        // Only the compiled file's own relative imports; zod's inner ones are bundled.
        b.onResolve({ filter: /^\./ }, (args) => (args.importer === file ? { path: args.path, external: true } : undefined));
      },
    },
  ],
});
