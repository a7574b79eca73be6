// Where one migration's system session keeps things under the receiver's data
// directory: DATA/systems/ID/{layout.json, root (the target tree),
// btrfs/PARTID (each Btrfs top level), unmounted/ID (file systems with no
// mount point), grow/ID (temporary mounts while growing)}; and the receiver
// target names of its volumes ('ID.VOLID', with ':' '@' '/' made legal).

import { join } from 'node:path';
import { FerryError } from '../../errors/ferry-error.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const systemsDir = (dataDir: string) => join(dataDir, 'systems');

export class SystemPaths {
  readonly dir: string;
  readonly root: string;

  constructor(dataDir: string, readonly id: string) {
    if (!ID.test(id)) throw new FerryError('FERRY_FRAME_MALFORMED', `system session id '${id.slice(0, 80)}' may hold letters, digits, '_', '.', '-' only (64 at most)`);
    this.dir = join(systemsDir(dataDir), id);
    this.root = join(this.dir, 'root');
  }

  /** The target tree path of a mount point ('/boot' → DIR/root/boot); the layout's mount points are checked absolute, without '..'. */
  inRoot(mountPoint: string): string {
    return join(this.root, mountPoint).replace(/(.)\/+$/, '$1');
  }

  btrfsTop(partitionId: string): string {
    return join(this.dir, 'btrfs', partitionId);
  }

  unmounted(volumeId: string): string {
    return join(this.dir, 'unmounted', volumeId);
  }

  growMount(volumeId: string): string {
    return join(this.dir, 'grow', volumeId.replace(/[^A-Za-z0-9_.-]/g, '_'));
  }

  /** The receiver target name of a volume: 'ID.VOLID', ':' → '.', '@' → 'at-', '/' → '-', anything else illegal → '_'. */
  targetName(volumeId: string): string {
    const safe = volumeId.replace(/:/g, '.').replace(/@/g, 'at-').replace(/\//g, '-').replace(/[^A-Za-z0-9_.-]/g, '_');
    return `${this.id}.${safe}`.slice(0, 128);
  }
}
