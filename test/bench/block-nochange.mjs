// A block image's no-change passes in the resident agent (resident-agent.mjs), each followed by dd bs=4M
// reading the image, to see where a no-change pass's time goes (docs/replication.md, s35). Not part of
// `npm run bench`; after `npm run build`, under the shared lock:
//   flock /tmp/ferry-heavy.lock node test/bench/block-nochange.mjs IMAGE ROUNDS [cold]
// One untimed full pass first, then ROUNDS no-change passes (page cache warm unless `cold`): the wall ms of
// each pass, and of each dd (process start included, as the block bench times it). PROF=DIR adds --cpu-prof to
// the resident agent (its profiles are written to DIR when it exits).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dropCaches, ensureWork, FERRY, freePort, NODE_FLAGS, startProcess, startResidentAgent, stop, timed, WORK } from './lib.mjs';

const [image, rounds = '5', cache = 'warm'] = process.argv.slice(2);
if (!image) throw new Error('usage: block-nochange.mjs IMAGE ROUNDS [cold]');
ensureWork();
const dir = join(WORK, 'block-nochange');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const target = join(dir, 'target.img');
execFileSync('truncate', ['-s', String(statSync(image).size), target]);
const port = await freePort();
const recv = await startProcess(process.execPath, [...NODE_FLAGS, FERRY, 'receive', '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'recv'), '--target', `disk0=${target}`], /fingerprint/i);
const info = JSON.parse(readFileSync(join(dir, 'recv/receiver.json'), 'utf8'));
const prof = process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}`] : [];
const agent = await startResidentAgent([...NODE_FLAGS, ...prof]);
const request = { source: image, target: 'disk0', receiver: { host: '127.0.0.1', port, token: info.token, fingerprint: info.fingerprint } };
try {
  await agent.pass(request);
  const passes = [];
  const dds = [];
  for (let i = 0; i < Number(rounds); i++) {
    if (cache === 'cold') dropCaches();
    passes.push((await agent.pass(request)).wallMs.toFixed(0));
    if (cache === 'cold') dropCaches();
    dds.push(((await timed(`dd if=${image} of=/dev/null bs=4M status=none`)).wall * 1000).toFixed(0));
  }
  console.log(`${image}, ${cache}: resident no-change pass ms ${passes.join(' ')}; dd ms ${dds.join(' ')}`);
} finally {
  // stdin closed: the resident agent exits by itself (and writes its profile).
  agent.child.stdin.end();
  await new Promise((r) => agent.child.once('exit', r));
  await stop(recv);
  rmSync(dir, { recursive: true, force: true });
}
