// The file walk alone (replication/file/walker.ts, no worker threads: as a delta's walk runs), warm: the wall ms of
// each round over ROOT, with the build in DIST. Not part of `npm run bench`; for before/after comparisons of the
// walker, builds alternating, under the shared lock (docs/file-replication.md, s35):
//   flock /tmp/ferry-heavy.lock node --max-semi-space-size=4 test/bench/file-walk.mjs DIST ROOT ROUNDS
import { resolve } from 'node:path';

const [dist, root, rounds = '5'] = process.argv.slice(2);
if (!dist || !root) throw new Error('usage: file-walk.mjs DIST ROOT ROUNDS');
const { Walker } = await import(`${resolve(dist)}/replication/file/walker.js`);
const times = [];
let entries = 0;
for (let r = 0; r < Number(rounds); r++) {
  const t0 = performance.now();
  let n = 0;
  const w = new Walker(root, { threads: 0 });
  for (let s = await w.next(); s; s = await w.next()) n += s.to - s.from;
  await w.close();
  times.push((performance.now() - t0).toFixed(0));
  entries = n;
}
console.log(`${entries} entries: ${times.join(' ')} ms`);
