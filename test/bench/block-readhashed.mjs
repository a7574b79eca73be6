// The floor of a block pass that reads every byte: the native readHashed (src/native/ferry-fs.c) over an image,
// K reads of 4 MiB in flight on libuv's pool, nothing else (docs/replication.md, s35). Not part of
// `npm run bench`; after `npm run build`:
//   flock /tmp/ferry-heavy.lock node test/bench/block-readhashed.mjs IMAGE K ROUNDS
// Prints the wall ms of each round (page cache as it is: read the image once first for warm figures).
import { openSync, fstatSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lib.mjs';

const [image, k = '2', rounds = '8'] = process.argv.slice(2);
if (!image) throw new Error('usage: block-readhashed.mjs IMAGE K ROUNDS');
const { nativeFs } = await import(join(ROOT, 'dist/platform/native-fs.js'));
const readHashed = nativeFs()?.readHashed;
if (!readHashed) throw new Error('the native module has no readHashed (npm run build, with libxxhash-dev)');
const READ = 4 * 1024 * 1024;
const CHUNK = 32 * 1024;
const fd = openSync(image, 'r');
const size = fstatSync(fd).size;
const buffers = Array.from({ length: Number(k) }, () => Buffer.allocUnsafeSlow(READ));
const times = [];
for (let r = 0; r < Number(rounds); r++) {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    buffers.map(async (b) => {
      while (next < size) {
        const at = next;
        next += READ;
        const n = Math.min(READ, size - at);
        await readHashed(fd, b.subarray(0, n), at, CHUNK, Buffer.allocUnsafe(Math.ceil(n / CHUNK) * 8));
      }
    }),
  );
  times.push((performance.now() - t0).toFixed(0));
}
closeSync(fd);
console.log(`K=${k}: ${times.join(' ')} ms`);
