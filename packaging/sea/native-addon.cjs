// Runtime side of the single executable: loads a native addon stored as a
// SEA asset. Node can only dlopen a file, so the bytes are written once to a
// private directory ($FERRY_NATIVE_DIR, else /var/lib/ferry/native as root,
// else <tmpdir>/ferry-native-<uid>), named by their sha256, and checked
// again before every load: a file planted by someone else is never loaded.
// ferry's own native module (ferry-fs.node) is loaded the same way, but by
// path (addonFile), since the walk's worker threads load it too.
'use strict';
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const sea = require('node:sea');

function baseDir() {
  if (process.env.FERRY_NATIVE_DIR) return process.env.FERRY_NATIVE_DIR;
  if (typeof process.getuid === 'function' && process.getuid() === 0 && fs.existsSync('/var/lib')) return '/var/lib/ferry/native';
  return path.join(os.tmpdir(), `ferry-native-${typeof process.getuid === 'function' ? process.getuid() : 'user'}`);
}

function privateDir(dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(`ferry: ${dir} must be a directory owned by uid ${uid} and writable only by it (set FERRY_NATIVE_DIR)`);
  }
  // Every directory above it too (as native-fs.ts's trusted() checks a module's): owned by root or this user,
  // writable by no one else, but a root-owned sticky one such as /tmp. Else someone could move the private
  // directory away between the checksum and the dlopen, and put their own in its place.
  const real = fs.realpathSync(dir);
  for (let up = path.dirname(real); ; up = path.dirname(up)) {
    const p = fs.lstatSync(up);
    const sticky = p.uid === 0 && (p.mode & 0o1000) !== 0;
    if (!p.isDirectory() || (p.uid !== 0 && p.uid !== uid) || ((p.mode & 0o022) !== 0 && !sticky)) {
      throw new Error(`ferry: ${up}, above ${dir}, must be owned by root or uid ${uid} and writable by no one else (set FERRY_NATIVE_DIR)`);
    }
    if (up === path.dirname(up)) break;
  }
}

/** The asset's bytes as a file in the private directory, checked (or written) now: its path. */
function addonFile(asset) {
  const bytes = Buffer.from(sea.getAsset(asset));
  const digest = createHash('sha256').update(bytes).digest('hex');
  const dir = baseDir();
  privateDir(dir);
  const file = path.join(dir, `${digest.slice(0, 32)}-${asset}`);
  let ok = false;
  try {
    ok = createHash('sha256').update(fs.readFileSync(file)).digest('hex') === digest && (fs.lstatSync(file).mode & 0o022) === 0;
  } catch {
    ok = false;
  }
  if (!ok) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, bytes, { mode: 0o500 });
    fs.renameSync(tmp, file);
  }
  return file;
}

function loadAddon(asset) {
  const m = { exports: {} };
  process.dlopen(m, addonFile(asset));
  return m.exports;
}

module.exports = { addonFile, loadAddon };
