// The receiver's extractor alone (issue 14, docs/file-replication.md "Small files written by a writer thread"):
// one FileExtractor of the given build applies a prepared tar file to a directory; prints wall and CPU seconds of
// the extraction and the process's peak RSS. Run by file-extract-usr.sh.
//   node test/bench/file-extract.mjs DIST TAR DEST
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';

const [dist, tar, dest] = process.argv.slice(2);
const { FileExtractor } = await import(resolve(dist, 'receiver/file-extractor.js'));
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
const s = await new FileExtractor({ root: dest }).extract(createReadStream(tar, { highWaterMark: 1 << 20 }));
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const c = process.cpuUsage(c0);
console.log(`entries=${s.entries} wall=${wall.toFixed(2)} cpu=${((c.user + c.system) / 1e6).toFixed(2)} rss=${(process.resourceUsage().maxRSS / 1024).toFixed(0)}MB`);
