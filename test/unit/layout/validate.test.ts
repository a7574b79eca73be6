// validateLayout: what the receiver refuses before writing anything, each
// refusal with its code and the figures a person needs to fix the layout.

import { describe, expect, it } from 'vitest';
import { FS_MIN_BYTES, placePartitions } from '../../../src/layout/geometry.js';
import type { Layout } from '../../../src/layout/model.js';
import { shrinkMarginBytes, validateLayout } from '../../../src/layout/validate.js';
import { MIB, disksOf, labLayout, refusal } from './lab-layout.js';

const edit = (f: (l: Layout) => void): Layout => {
  const l = labLayout();
  f(l);
  return l;
};
const part = (l: Layout, id: string) => l.disks.flatMap((d) => d.partitions).find((p) => p.id === id)!;

describe('validateLayout', () => {
  it('accepts the test server on disks of its own size, in both modes', () => {
    expect(() => validateLayout(labLayout(), disksOf(920, 568), 'file')).not.toThrow();
    expect(() => validateLayout(labLayout(), disksOf(920, 568), 'block')).not.toThrow();
  });

  it('places partitions as sfdisk does: 1 MiB aligned, logical ones behind a 1 MiB EBR, GPT tail of 33 sectors', () => {
    const [d0, d1] = labLayout().disks;
    const noStarts = structuredClone(d1!);
    for (const p of noStarts.partitions) delete p.startBytes;
    const placed = placePartitions(noStarts, 512).partitions.map((p) => [p.id, p.startBytes / 512]);
    // the figures sfdisk printed for the lab's MBR disk
    expect(placed).toEqual([
      ['disk1p1', 2048],
      ['disk1p2', 657408],
      ['disk1p5', 659456],
      ['disk1p6', 866304],
      ['disk1p3', 1071104],
    ]);
    expect(placePartitions(d0!, 512).neededBytes).toBe(918 * MIB + 33 * 512);
  });

  it('accepts partition numbers out of physical order when starts are given (the PV before the extended partition)', () => {
    const l = labLayout();
    part(l, 'disk1p3').startBytes = 321 * MIB;
    part(l, 'disk1p2').startBytes = 361 * MIB;
    part(l, 'disk1p5').startBytes = 362 * MIB;
    part(l, 'disk1p6').startBytes = 463 * MIB;
    expect(() => validateLayout(l, disksOf(920, 568), 'block')).not.toThrow();
    part(l, 'disk1p6').startBytes = 462 * MIB - 512; // no sector left for its EBR
    expect(refusal(() => validateLayout(l, disksOf(920, 568), 'block')).message).toContain('inside partition disk1p5 (bytes 379584512–484442112 and its EBR): they overlap');
  });

  it('SMS.0411: a disk the receiver was not given, naming the ones it has', () => {
    const e = refusal(() => validateLayout(labLayout(), [disksOf(920, 568)[0]!], 'file'));
    expect(e.code).toBe('SMS.0411');
    expect(e.message).toContain('"disk1"');
    expect(e.message).toContain('it has disk0 (964689920 bytes');
  });

  it('SMS.1315: a target disk too small, with needed and available bytes', () => {
    const e = refusal(() => validateLayout(labLayout(), disksOf(918, 568), 'file'));
    expect(e.code).toBe('SMS.1315');
    expect(e.message).toContain(`need ${918 * MIB + 33 * 512} bytes`);
    expect(e.message).toContain(`has ${918 * MIB} bytes`);
    expect(e.message).toContain('16896 bytes (0.0 MiB) short');
    expect(e.message).toContain("GPT's backup header");
  });

  it('FERRY_FS_UNSUPPORTED names the type (a receiver without mkfs.xfs, or a type ferry does not know)', () => {
    const e = refusal(() => validateLayout(labLayout(), disksOf(920, 568), 'file', { fsTypes: ['ext4', 'vfat', 'btrfs', 'swap'] }));
    expect(e.code).toBe('FERRY_FS_UNSUPPORTED');
    expect(e.message).toContain('"xfs"');
    const zfs = edit((l) => {
      (part(l, 'disk0p3').content as { fsType: string }).fsType = 'zfs';
    });
    expect(refusal(() => validateLayout(zfs, disksOf(920, 568), 'file')).message).toContain('"zfs"');
  });

  it('FERRY_LAYOUT_INVALID for a label longer than the file system holds (xfs 12 bytes, ext4 16), where the receiver makes the file system', () => {
    const long = (fsType: string, label: string) =>
      edit((l) => {
        Object.assign(part(l, 'disk0p4').content, { fsType, label });
      });
    const e = refusal(() => validateLayout(long('xfs', 'thirteen-char'), disksOf(920, 568), 'file'));
    expect(e.code).toBe('FERRY_LAYOUT_INVALID');
    expect(e.message).toContain('the label "thirteen-char" is 13 bytes; a xfs label holds at most 12');
    expect(() => validateLayout(long('xfs', 'twelve-chars'), disksOf(920, 568), 'file')).not.toThrow();
    expect(refusal(() => validateLayout(long('ext4', 'seventeen-chars-x'), disksOf(920, 568), 'file')).message).toContain('is 17 bytes; a ext4 label holds at most 16');
    // Block level copies the file system with its label: nothing is made, nothing to refuse.
    expect(() => validateLayout(long('xfs', 'thirteen-char'), disksOf(920, 568), 'block')).not.toThrow();
  });

  it('FERRY_LAYOUT_INVALID for a UUID mkfs would not take as given (a keyword like "random" included), where the receiver makes the file system', () => {
    const withUuid = (id: string, uuid: string) =>
      edit((l) => {
        Object.assign(part(l, id).content, { uuid });
      });
    const e = refusal(() => validateLayout(withUuid('disk0p3', 'not-a-uuid'), disksOf(920, 568), 'file'));
    expect(e.code).toBe('FERRY_LAYOUT_INVALID');
    expect(e.message).toContain('disk disk0 partition disk0p3: the ext4 UUID "not-a-uuid" is not a UUID of 32 hex digits');
    // mkfs.ext4 -U takes these as keywords: a fresh or a null UUID instead of the source's.
    for (const keyword of ['random', 'time', 'clear']) {
      expect(refusal(() => validateLayout(withUuid('disk0p3', keyword), disksOf(920, 568), 'file')).message).toContain(`UUID "${keyword}"`);
    }
    expect(refusal(() => validateLayout(withUuid('disk0p4', '0b4a3c2e52a44d0c8d0e2b3f0a6c9e01'), disksOf(920, 568), 'file')).message).toContain('xfs UUID');
    expect(refusal(() => validateLayout(withUuid('disk0p2', '0b4a3c2e-52a4-4d0c-8d0e-2b3f0a6c9e01'), disksOf(920, 568), 'file')).message).toContain(
      "is not a vfat volume id of 8 hex digits as blkid prints it ('1A2B-3C4D')",
    );
    expect(refusal(() => validateLayout(withUuid('disk0p6', 'swap-1'), disksOf(920, 568), 'block')).message).toContain('the swap UUID "swap-1"');
    // Well-formed ones in either case, and none at all (mkfs makes one), pass.
    expect(() => validateLayout(withUuid('disk0p4', '0B4A3C2E-52A4-4D0C-8D0E-2B3F0A6C9E01'), disksOf(920, 568), 'file')).not.toThrow();
    expect(() => validateLayout(withUuid('disk0p2', '7e3a-1c05'), disksOf(920, 568), 'file')).not.toThrow();
    expect(() => validateLayout(withUuid('disk0p3', ''), disksOf(920, 568), 'file')).not.toThrow();
    // Block level copies the file system with its UUID: nothing is made, nothing to refuse.
    expect(() => validateLayout(withUuid('disk0p3', 'not-a-uuid'), disksOf(920, 568), 'block')).not.toThrow();
    // An LVM physical volume's UUID is LVM's own form (pvcreate --uuid).
    expect(refusal(() => validateLayout(withUuid('disk1p3', 'pv-uuid'), disksOf(920, 568), 'file')).message).toContain(
      'disk disk1 partition disk1p3: the LVM physical volume UUID "pv-uuid" is not LVM\'s form',
    );
    expect(() => validateLayout(withUuid('disk1p3', 'fJ3ssT8nBmgA2r8eeNO2lsY6HQhZN4vG'), disksOf(920, 568), 'file')).not.toThrow();
  });

  it('FERRY_LAYOUT_INVALID for structure: duplicate ids and numbers, MBR limits, logical numbering, VGs, alignment, overlaps, fs minimums', () => {
    const cases: [string, (l: Layout) => void, RegExp][] = [
      ['duplicate id', (l) => (part(l, 'disk0p4').id = 'disk0p3'), /id "disk0p3" is used twice/],
      ['duplicate number', (l) => (part(l, 'disk0p4').number = 3), /number 3 is used twice/],
      [
        '5 primaries',
        (l) => {
          part(l, 'disk1p5').logical = false;
          part(l, 'disk1p6').logical = false;
        },
        /5 primary and extended partitions, MBR holds 4/],
      [
        'two extended',
        (l) => {
          part(l, 'disk1p3').type = 'f';
          part(l, 'disk1p3').content = { kind: 'none' };
        },
        /2 extended partitions/,
      ],
      ['logical numbering', (l) => (part(l, 'disk1p6').number = 7), /numbered 5, 6, … in order; this one is 7, expected 6/],
      ['logical without extended', (l) => (l.disks[1]!.partitions = l.disks[1]!.partitions.filter((p) => p.id !== 'disk1p2')), /no extended partition/],
      ['logical on GPT', (l) => (part(l, 'disk0p6').logical = true), /GPT has no logical partitions/],
      ['PV of an unknown VG', (l) => (l.volumeGroups[0]!.name = 'vg9'), /volume group "vg0", which volumeGroups does not list/],
      [
        'VG without PV',
        (l) => {
          part(l, 'disk1p3').content = { kind: 'none' };
        },
        /volume group "vg0" has no physical volume/,
      ],
      ['unaligned start', (l) => (part(l, 'disk0p4').startBytes = 266 * MIB + 100), /start 278921316 is not on a 512-byte sector boundary/],
      ['overlap', (l) => (part(l, 'disk0p4').startBytes = 200 * MIB), /partition disk0p4 starts at byte 209715200, inside partition disk0p3 \(bytes 69206016–278921216\): they overlap/],
      ['xfs below 300 MiB', (l) => (part(l, 'disk0p4').sizeBytes = 299 * MIB), /314572800 bytes \(300\.0 MiB\)/],
      ['logical past its extended', (l) => (part(l, 'disk1p2').sizeBytes = 201 * MIB), /disk1p6 \(bytes 485490688–590348288\) is not inside its extended partition disk1p2 \(bytes 378535936–589299712\)/],
    ];
    for (const [name, f, msg] of cases) {
      const e = refusal(() => validateLayout(edit(f), disksOf(920, 568), 'file'));
      expect([name, e.code], e.message).toEqual([name, 'FERRY_LAYOUT_INVALID']);
      expect(e.message, name).toMatch(msg);
    }
    expect(FS_MIN_BYTES.btrfs).toBe(109 * MIB);
  });

  const shrink = (id: string, mib: number) =>
    edit((l) => {
      for (const p of l.disks.flatMap((d) => d.partitions)) delete p.startBytes;
      part(l, id).sizeBytes = mib * MIB;
    });

  it('FERRY_LAYOUT_NO_FIT at file level: a shrunk file system must hold its used space plus max(10 %, 64 MiB)', () => {
    expect(shrinkMarginBytes(12 * MIB)).toBe(64 * MIB);
    expect(shrinkMarginBytes(1000 * MIB)).toBe(100 * MIB);
    // /var/log uses 12 MiB: 76 MiB is the least it may shrink to
    const e = refusal(() => validateLayout(shrink('disk1p5', 70), disksOf(920, 568), 'file'));
    expect(e.code).toBe('FERRY_LAYOUT_NO_FIT');
    expect(e.message).toContain('shrunk to 73400320 bytes (70.0 MiB)');
    expect(e.message).toContain('uses 12582912 bytes (12.0 MiB)');
    expect(e.message).toContain('margin of 67108864 bytes (64.0 MiB)');
    expect(e.message).toContain('at least 79691776 bytes (76.0 MiB)');
    expect(() => validateLayout(shrink('disk1p5', 76), disksOf(920, 568), 'file')).not.toThrow();
  });

  it('a full file system that keeps its size is not a shrink: no margin asked', () => {
    const full = edit((l) => {
      const c = part(l, 'disk1p6').content;
      if (c.kind === 'filesystem') c.usedBytes = 100 * MIB;
    });
    expect(() => validateLayout(full, disksOf(920, 568), 'file')).not.toThrow();
  });

  it('FERRY_LAYOUT_NO_FIT for any shrink of a block copy: every partition in block mode, the ESP and BIOS boot partition at file level', () => {
    const e = refusal(() => validateLayout(shrink('disk1p5', 90), disksOf(920, 568), 'block'));
    expect(e.code).toBe('FERRY_LAYOUT_NO_FIT');
    expect(e.message).toContain('94371840 bytes (90.0 MiB) is smaller than its source, 104857600 bytes (100.0 MiB)');
    expect(e.message).toContain('or migrate at file level');
    const esp = refusal(() => validateLayout(shrink('disk0p2', 40), disksOf(920, 568), 'file'));
    expect([esp.code, esp.message]).toEqual(['FERRY_LAYOUT_NO_FIT', expect.stringContaining('copied block for block')]);
  });

  it('SMS.1315 when a volume group\'s logical volumes outgrow its physical volumes', () => {
    const e = refusal(() =>
      validateLayout(
        edit((l) => (l.volumeGroups[0]!.logicalVolumes[0]!.sizeBytes = 36 * MIB)),
        disksOf(920, 568),
        'file',
      ),
    );
    expect(e.code).toBe('SMS.1315');
    expect(e.message).toContain('volume group vg0: its logical volumes need 46137344 bytes');
    expect(e.message).toContain('give 37748736 bytes (36.0 MiB) (1 MiB of LVM metadata each): 8388608 bytes (8.0 MiB) short');
  });
});
