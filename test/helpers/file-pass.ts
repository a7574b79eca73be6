// One file pass from src to dst for tests. Until the wire carries file
// sessions this drives the producer and the extractor in one process,
// connected by the tar byte stream itself.

import { closeSync, fstatSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { TarProducer } from '../../src/replication/file/tar-producer.js';
import { pieceHashes } from '../../src/replication/file/pieces.js';
import { FileExtractor } from '../../src/receiver/file-extractor.js';

export interface TreePass {
  pass: 'full' | 'delta';
  bytesOnWire: number;
}

export async function replicateTree(src: string, dst: string, stateDir: string): Promise<TreePass> {
  const manifest = join(stateDir, 'manifest');
  const pass = existsSync(manifest) ? 'delta' : 'full';
  const producer = new TarProducer({
    root: src,
    manifest,
    remoteHashes: async (path) => {
      const fd = openSync(Buffer.concat([Buffer.from(`${dst}/`), path]), 'r');
      try {
        return await pieceHashes(fd, fstatSync(fd).size);
      } finally {
        closeSync(fd);
      }
    },
  });
  await new FileExtractor({ root: dst }).extract(producer.stream());
  producer.commitManifest();
  return { pass, bytesOnWire: producer.stats.streamBytes };
}
