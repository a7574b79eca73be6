// Reading and writing files of the migrated system from the receiver, inside
// its tree only: the tree is the source's content, and a symlink in it (an
// absolute one, or one climbing out with '..') must never make the receiver
// read or write one of its own files. A path is resolved and refused
// (undefined: skipped) when it leaves the tree. Writes keep the file's mode
// and owner (rewritten in place) and are flushed.
// Must not touch: anything outside the target tree.

import { constants } from 'node:fs';
import { open, readdir, readFile, realpath, rename } from 'node:fs/promises';
import { join, sep } from 'node:path';

export class TargetFiles {
  constructor(readonly root: string) {}

  /** The receiver's path of target path `p` when it exists and resolves inside the tree. */
  async resolve(p: string): Promise<string | undefined> {
    let real: string;
    try {
      real = await realpath(join(this.root, p));
    } catch {
      return undefined;
    }
    return real === this.root || real.startsWith(this.root + sep) ? real : undefined;
  }

  async read(p: string): Promise<string | undefined> {
    const at = await this.resolve(p);
    return at === undefined ? undefined : readFile(at, 'utf8').catch(() => undefined);
  }

  exists = async (p: string): Promise<boolean> => (await this.resolve(p)) !== undefined;

  /** Rewrites an existing file in place (O_NOFOLLOW on the resolved path). */
  async write(p: string, text: string): Promise<void> {
    const at = await this.resolve(p);
    if (at === undefined) throw new Error(`${p} is not a file inside the migrated system`);
    const fh = await open(at, constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Creates or replaces a file (its directory must exist inside the tree). */
  async create(p: string, text: string, mode = 0o644): Promise<void> {
    const dir = await this.resolve(p.slice(0, p.lastIndexOf('/')) || '/');
    if (dir === undefined) throw new Error(`the directory of ${p} is not inside the migrated system`);
    const at = join(dir, p.slice(p.lastIndexOf('/') + 1));
    const fh = await open(at, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async append(p: string, text: string): Promise<void> {
    const dir = await this.resolve(p.slice(0, p.lastIndexOf('/')) || '/');
    if (dir === undefined) return;
    const fh = await open(join(dir, p.slice(p.lastIndexOf('/') + 1)), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, 0o640);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Renames a file within one directory of the tree. */
  async rename(dir: string, from: string, to: string): Promise<void> {
    const at = await this.resolve(dir);
    if (at === undefined || from.includes('/') || to.includes('/')) throw new Error(`${dir} is not a directory inside the migrated system`);
    await rename(join(at, from), join(at, to));
  }

  /** Names in directory `p` (none when it is missing or outside the tree). */
  async list(p: string): Promise<string[]> {
    const at = await this.resolve(p);
    return at === undefined ? [] : (await readdir(at).catch(() => [])).sort();
  }
}
