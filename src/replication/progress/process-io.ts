// This process's cumulative disk bytes (read + written), by platform.

import { readProcessIoLinux } from './process-io-linux.js';
import { readProcessIoWindows } from './process-io-windows.js';

/** Cumulative bytes this process read from and wrote to storage; null when the platform does not say. */
export function readProcessIo(): Promise<number | null> {
  if (process.platform === 'linux') return readProcessIoLinux();
  if (process.platform === 'win32') return readProcessIoWindows();
  return Promise.resolve(null);
}
