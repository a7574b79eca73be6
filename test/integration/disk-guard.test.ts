// The receiver's disk-in-use check asks `pvs` (which scans every block device
// on the machine) only about a disk one of whose nodes carries an LVM label:
// a blank target disk is cleared without it, a disk with a physical volume
// (made by the real pvcreate, metadata only; on the whole disk or on one of
// its partitions) is still asked about. The label
// test itself on image files: LVM's header in one of the first four sectors.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/requirements.js';
import { LoopDisk, sh } from '../helpers/loop.js';
import { releaseFifo } from '../helpers/fifo.js';
import { diskHolder, hasLvmLabel } from '../../src/receiver/system/disk-guard.js';

const env = needs({ root: true, tools: ['pvcreate', 'pvremove', 'mkfs.ext4'] });
const NOACT = ['--config', 'global { activation = 0 }'];

/** An image of 4 KiB with LVM's label header at sector `sector` (type `type`). */
function labelled(dir: string, name: string, sector: number, type = 'LVM2 001'): string {
  const b = Buffer.alloc(4096);
  b.write('LABELONE', sector * 512, 'latin1');
  b.write(type, sector * 512 + 24, 'latin1');
  const p = join(dir, name);
  writeFileSync(p, b);
  return p;
}

describe('hasLvmLabel', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-lvm-label-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the header in any of the first four sectors, and nowhere else', async () => {
    for (const s of [0, 1, 2, 3]) expect(await hasLvmLabel(labelled(dir, `at${s}`, s))).toBe(true);
    expect(await hasLvmLabel(labelled(dir, 'at4', 4))).toBe(false);
    expect(await hasLvmLabel(labelled(dir, 'other-type', 1, 'LVM1 001'))).toBe(false);
    writeFileSync(join(dir, 'zeros'), Buffer.alloc(4096));
    expect(await hasLvmLabel(join(dir, 'zeros'))).toBe(false);
    writeFileSync(join(dir, 'short'), 'LABELONE');
    expect(await hasLvmLabel(join(dir, 'short'))).toBe(false);
    // What cannot be read counts as labelled: pvs decides.
    expect(await hasLvmLabel(join(dir, 'missing'))).toBe(true);
  });

  it('counts a node whose read does not come back as labelled (a hung device), and goes on', async () => {
    // open() of a fifo with no writer blocks, as a read of a hung device would.
    const fifo = join(dir, 'hung');
    execFileSync('mkfifo', [fifo]);
    expect(await hasLvmLabel(fifo, 100)).toBe(true);
    // Let the blocked open() go.
    await releaseFifo(fifo);
  });
});

describe.runIf(env.ok)('diskHolder and pvs', () => {
  let disk: LoopDisk;
  let pv = false;
  beforeAll(() => {
    disk = LoopDisk.create(64 * 1024 * 1024, 'ferry-disk-guard-');
  });
  afterAll(() => {
    if (pv) sh('pvremove', ['-q', '-ff', '-y', ...NOACT, disk.device]);
    disk?.destroy();
  });

  it('does not ask pvs about a blank disk, nor about one holding a file system', async () => {
    let asked = 0;
    const pvs = async () => {
      asked++;
      return '';
    };
    expect(await hasLvmLabel(disk.device)).toBe(false);
    expect(await diskHolder([disk.device], pvs)).toBeUndefined();
    sh('mkfs.ext4', ['-q', '-F', disk.device]);
    expect(await diskHolder([disk.device], pvs)).toBeUndefined();
    expect(asked).toBe(0);
  });

  it('asks pvs about a disk that is an LVM physical volume', async () => {
    sh('pvcreate', ['-q', '-ff', '-y', ...NOACT, disk.device]);
    pv = true;
    try {
      expect(await hasLvmLabel(disk.device)).toBe(true);
      let asked = 0;
      const pvs = async () => {
        asked++;
        return ''; // no volume group on it: nothing holds it
      };
      expect(await diskHolder([disk.device], pvs)).toBeUndefined();
      expect(asked).toBe(1);
    } finally {
      sh('pvremove', ['-q', '-ff', '-y', ...NOACT, disk.device]);
      pv = false;
    }
  });

  it('asks pvs about a disk one of whose partitions is an LVM physical volume', async () => {
    sh('wipefs', ['-q', '-a', disk.device]); // the cases above
    sh('sfdisk', ['-q', disk.device], 'label: gpt\n,16MiB\n,\n');
    disk.rescan();
    sh('pvcreate', ['-q', '-ff', '-y', ...NOACT, disk.part(2)]);
    try {
      expect(await hasLvmLabel(disk.device)).toBe(false);
      expect(await hasLvmLabel(disk.part(2))).toBe(true);
      let asked = 0;
      const pvs = async () => {
        asked++;
        return '';
      };
      expect(await diskHolder([disk.device], pvs)).toBeUndefined();
      expect(asked).toBe(1);
    } finally {
      sh('pvremove', ['-q', '-ff', '-y', ...NOACT, disk.part(2)]);
    }
  });
});
