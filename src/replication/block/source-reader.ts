// Reads a source volume (block device or image file) front to back in large
// sequential I/O, one read ahead of the consumer. Each block is a fresh
// buffer the consumer may keep (frames reference it until encoded).

import { open } from 'node:fs/promises';
import { FerryError } from '../../errors.js';

export const READ_BLOCK_BYTES = 4 * 1024 * 1024;

export interface SourceBlock {
  offset: number;
  data: Buffer;
}

export async function* readBlocks(path: string, from: number, size: number, blockBytes = READ_BLOCK_BYTES): AsyncGenerator<SourceBlock> {
  const fh = await open(path, 'r');
  try {
    const readAt = async (offset: number): Promise<SourceBlock> => {
      const n = Math.min(blockBytes, size - offset);
      const data = Buffer.allocUnsafeSlow(n);
      let got = 0;
      while (got < n) {
        const { bytesRead } = await fh.read(data, got, n - got, offset + got);
        if (bytesRead === 0) throw new FerryError('SMS.0805', `source ${path} ended at ${offset + got}, expected ${size} bytes`);
        got += bytesRead;
      }
      return { offset, data };
    };
    let next: Promise<SourceBlock> | undefined = from < size ? readAt(from) : undefined;
    while (next) {
      const cur = await next;
      const after = cur.offset + cur.data.length;
      next = after < size ? readAt(after) : undefined;
      next?.catch(() => {});
      yield cur;
    }
  } finally {
    await fh.close();
  }
}
