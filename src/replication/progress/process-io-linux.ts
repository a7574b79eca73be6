// Linux: read_bytes + write_bytes of /proc/self/io (bytes that reached the
// block layer; reads served from the page cache do not count).

import { readFile } from 'node:fs/promises';

export async function readProcessIoLinux(): Promise<number | null> {
  const text = await readFile('/proc/self/io', 'utf8').catch(() => null);
  return text === null ? null : parseProcIo(text);
}

export function parseProcIo(text: string): number | null {
  const get = (k: string) => {
    const m = new RegExp(`^${k}:\\s*(\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  const r = get('read_bytes');
  const w = get('write_bytes');
  return r === null || w === null ? null : r + w;
}
