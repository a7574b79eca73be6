// A size-rotated log file for pino: lines are appended synchronously (a
// crash loses nothing already logged); when the file would pass `maxBytes`
// it becomes `<file>.1`, `<file>.1` becomes `<file>.2`, … and the oldest
// beyond `maxFiles` is dropped. Mode 0600: logs may name hosts and paths.

import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export class RotatingFile {
  readonly path: string;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private fd: number;
  private size: number;

  constructor(path: string, options: { maxBytes: number; maxFiles: number }) {
    this.path = path;
    this.maxBytes = options.maxBytes;
    this.maxFiles = options.maxFiles;
    mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
    this.fd = openSync(path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
    writeSync(this.fd, line);
    this.size += bytes;
    return true;
  }

  /** The current file and its rotated predecessors, newest first. */
  files(): string[] {
    return [this.path, ...Array.from({ length: this.maxFiles - 1 }, (_, i) => `${this.path}.${i + 1}`)];
  }

  private rotate(): void {
    closeSync(this.fd);
    rmSync(`${this.path}.${this.maxFiles - 1}`, { force: true });
    for (let i = this.maxFiles - 2; i >= 1; i--) {
      try {
        renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      } catch {
        // a gap in the sequence: nothing to move
      }
    }
    if (this.maxFiles > 1) renameSync(this.path, `${this.path}.1`);
    else rmSync(this.path, { force: true });
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}
