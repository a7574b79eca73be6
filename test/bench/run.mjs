// `npm run bench [block|files ...]`: runs the benchmarks, each comparing
// ferry with a standard tool in the same run, and prints ratios. Needs root
// (loop devices, drop_caches) and lz4, socat, rsync, GNU time.

const all = {
  block: () => import('./block.mjs'),
  files: () => import('./files.mjs'),
  system: () => import('./system.mjs'),
};

import { ARENAS } from './lib.mjs';

console.log(`# ferry processes: ${ARENAS}`);
const picked = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(all);
for (const name of picked) {
  if (!all[name]) {
    console.error(`unknown benchmark ${name}; known: ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
  const mod = await all[name]();
  await mod.run();
}
