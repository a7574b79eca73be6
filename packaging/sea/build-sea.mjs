// Builds the Linux single executable (Node SEA): esbuild bundles the staged
// app (dist/ + production node_modules) into one CommonJS script, the two
// native addons (lz4-napi, @napi-rs/xattr) become SEA assets loaded through
// native-addon.cjs, ferry's own native module (dist/native/ferry-fs.node:
// the walk's lister, small-file and xattr reads, LZ4 through the host's liblz4) an asset extracted
// the same way, the LZ4
// WebAssembly module an asset read at start-up,
// and postject injects the blob into a copy of node.
// Usage: node packaging/sea/build-sea.mjs <staged-app-dir> <node-binary> <output-file>
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const [app, nodeBin, output] = process.argv.slice(2);
if (!app || !nodeBin || !output) {
  process.stderr.write('usage: build-sea.mjs <staged-app-dir> <node-binary> <output-file>\n');
  process.exit(2);
}
const here = fileURLToPath(new URL('.', import.meta.url));
const version = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')).version;
const addons = {
  'lz4-napi': { asset: 'lz4-napi.node', file: 'node_modules/@antoniomuso/lz4-napi-linux-x64-gnu/lz4-napi.linux-x64-gnu.node' },
  '@napi-rs/xattr': { asset: 'xattr.node', file: 'node_modules/@napi-rs/xattr-linux-x64-gnu/xattr.linux-x64-gnu.node' },
};
const lz4Wasm = { asset: 'lz4.wasm', file: 'node_modules/lz4-wasm-nodejs/lz4_wasm_nodejs_bg.wasm' };
const ferryFs = { asset: 'ferry-fs.node', file: 'dist/native/ferry-fs.node' };
const work = mkdtempSync(join(tmpdir(), 'ferry-sea-'));
try {
  const script = join(work, 'ferry.cjs');
  await esbuild.build({
    entryPoints: [join(app, 'dist/cli/bin.js')],
    absWorkingDir: app,
    outfile: script,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'error',
    // CommonJS has no import.meta: files found next to a module (node-cron's
    // background daemon, Windows probes) are not used by the Linux binary.
    define: { 'import.meta.url': '__ferry_sea_url' },
    banner: { js: "var __ferry_sea_url = require('node:url').pathToFileURL(process.execPath).href;" },
    plugins: [
      {
        name: 'ferry-sea',
        setup(b) {
          b.onResolve({ filter: /^(lz4-napi|@napi-rs\/xattr)$/ }, (a) => ({ path: a.path, namespace: 'sea-addon' }));
          b.onLoad({ filter: /.*/, namespace: 'sea-addon' }, (a) => ({
            loader: 'js',
            resolveDir: here,
            contents: `module.exports = require('./native-addon.cjs').loadAddon(${JSON.stringify(addons[a.path].asset)});`,
          }));
          // The wasm file beside lz4-wasm-nodejs is not in the binary: its bytes are an asset.
          b.onLoad({ filter: /[\\/]dist[\\/]protocol[\\/]lz4-wasm-bytes\.js$/ }, () => ({
            loader: 'js',
            contents: `export function lz4WasmBytes() { return new Uint8Array(require('node:sea').getAsset(${JSON.stringify(lz4Wasm.asset)})); }`,
          }));
          // ferry's native module comes out of the executable's asset (native-addon.cjs: a private directory,
          // checked by its digest), never from beside the executable (a file found there could be anyone's).
          // native-fs.js is wrapped: its own code, with nativeFsPath (and nativeFs, which calls it) replaced.
          b.onLoad({ filter: /[\\/]dist[\\/]platform[\\/]native-fs\.js$/, namespace: 'file' }, () => ({
            loader: 'js',
            resolveDir: here,
            contents: `import { loadNativeFs } from 'ferry-sea-native-fs';
// Everything else as it is (a module's own exports take precedence over export *).
export * from 'ferry-sea-native-fs';
let found;
export function nativeFsPath() {
  if (process.env.FERRY_NATIVE === '0') return null;
  if (found !== undefined) return found;
  found = null;
  try {
    const path = require('./native-addon.cjs').addonFile(${JSON.stringify(ferryFs.asset)});
    if (loadNativeFs(path) !== null) found = path;
  } catch {
    found = null;
  }
  return found;
}
export function nativeFs() {
  const path = nativeFsPath();
  return path === null ? null : loadNativeFs(path);
}`,
          }));
          b.onResolve({ filter: /^ferry-sea-native-fs$/ }, () => ({ path: join(app, 'dist/platform/native-fs.js'), namespace: 'ferry-native-fs' }));
          b.onLoad({ filter: /.*/, namespace: 'ferry-native-fs' }, (a) => ({ loader: 'js', resolveDir: dirname(a.path), contents: readFileSync(a.path, 'utf8') }));
          // version.ts reads ../package.json beside dist/: there is none in the binary.
          b.onLoad({ filter: /[\\/]dist[\\/]version\.js$/ }, () => ({
            loader: 'js',
            contents: `export function agentVersion() { return ${JSON.stringify(version)}; }`,
          }));
        },
      },
    ],
  });
  const config = join(work, 'sea-config.json');
  const blob = join(work, 'sea.blob');
  writeFileSync(
    config,
    JSON.stringify({
      main: script,
      output: blob,
      disableExperimentalSEAWarning: true,
      assets: Object.fromEntries([...Object.values(addons), lz4Wasm, ferryFs].map((a) => [a.asset, join(app, a.file)])),
    }),
  );
  execFileSync(nodeBin, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(output, { force: true });
  copyFileSync(nodeBin, output);
  chmodSync(output, 0o755);
  const postject = fileURLToPath(new URL('../../node_modules/postject/dist/cli.js', import.meta.url));
  execFileSync(process.execPath, [postject, output, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}
