#!/usr/bin/env node
// Build step after tsc (npm run build, packaging/build.sh): compiles
// src/native/ferry-fs.c into DIST/native/ferry-fs.node with the C compiler
// ($CC, else cc) and the Node-API headers of the node running this script.
// Without a compiler or the headers it says so and exits 0: ferry then walks
// trees with node:fs (src/platform/native-fs.ts), slower, not different.
// FERRY_REQUIRE_NATIVE=1 makes that a failure (packaging/build.sh: a release
// carries the module; the tests require it under FERRY_REQUIRE_PRIVILEGED=1),
// and also a build without xxhash.h 0.7.3 or later (libxxhash-dev), which leaves out
// readHashed (block reads hashed on the pool: src/native/ferry-fs.c).
// Usage: node packaging/build-native.mjs [DIST]   (default: dist)

import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = resolve(process.argv[2] ?? 'dist');
const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const source = join(repo, 'src', 'native', 'ferry-fs.c');
const out = join(dist, 'native', 'ferry-fs.node');
const required = process.env.FERRY_REQUIRE_NATIVE === '1';

function skip(why) {
  process.stderr.write(`build-native: ${why}; ferry will walk trees with node:fs (slower, same result)\n`);
  rmSync(out, { force: true });
  try {
    rmdirSync(dirname(out));
  } catch {
    /* not empty, or not there */
  }
  process.exit(required ? 1 : 0);
}

// The headers that come with this node (a tarball's include/node, Debian's and NodeSource's /usr/include/node).
const includes = [join(dirname(dirname(process.execPath)), 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
const include = includes.find((d) => existsSync(join(d, 'node_api.h')));
if (!include) skip(`no node_api.h in ${includes.join(', ')}`);
const cc = process.env.CC || 'cc';
mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.tmp`;
// xxhash.h (Debian's libxxhash-dev) gives the module readHashed, from 0.7.3 on (older ones inline its code
// only with xxhash.c beside them); a release (FERRY_REQUIRE_NATIVE=1) must have it.
function xxhashVersion() {
  try {
    const macros = execFileSync(cc, ['-E', '-dM', '-x', 'c', '-'], { input: '#include <xxhash.h>\n', stdio: ['pipe', 'pipe', 'ignore'], encoding: 'utf8' });
    const part = (name) => Number(new RegExp(`#define XXH_VERSION_${name} (\\d+)`).exec(macros)?.[1] ?? NaN);
    const v = part('MAJOR') * 10000 + part('MINOR') * 100 + part('RELEASE');
    return Number.isFinite(v) ? v : 0;
  } catch {
    return 0;
  }
}
const xxhash = xxhashVersion() >= 703;
try {
  execFileSync(cc, ['-O2', '-std=gnu99', '-Wall', '-Wextra', '-Werror', ...(xxhash ? ['-DFERRY_XXHASH'] : []), '-shared', '-fPIC', '-s', '-I', include, '-o', tmp, source], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
} catch (e) {
  rmSync(tmp, { force: true });
  skip(e.code === 'ENOENT' ? `no C compiler (${cc})` : `${cc} failed`);
}
if (!xxhash) {
  if (required) {
    rmSync(tmp, { force: true });
    skip('no xxhash.h 0.7.3 or later (Debian: libxxhash-dev), which a release needs');
  }
  process.stderr.write('build-native: no xxhash.h 0.7.3 or later (Debian: libxxhash-dev): block passes will hash on the main thread in WebAssembly (slower, same result)\n');
}
// Modes that do not follow the umask: the loader refuses a module or directory that others may write.
chmodSync(tmp, 0o755);
chmodSync(dirname(out), 0o755);
renameSync(tmp, out);
