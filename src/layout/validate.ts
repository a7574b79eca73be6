// The receiver's check of a layout against the disks it was given, run
// before anything is written: structure (ids, numbers, MBR and GPT rules,
// volume groups), file system types, sizes against each file system's
// minimum, fit on each target disk, and the copy's size rules (a block copy
// never shrinks; a file-level shrink must hold the used space with a margin).
// Pure: it reads nothing and throws a FerryError naming the part and the
// figures. Device safety (mounted, swap, PV in use) is receiver/system/'s.

import { FerryError } from '../errors/ferry-error.js';
import { fmtBytes as fmt, FS_MIN_BYTES, MIB, alignUp, isExtended, placePartitions } from './geometry.js';
import { FILE_SYSTEMS, type Content, type CopyMode, type FileSystemType, type Layout } from './model.js';
import type { SystemDisk } from './system-session.js';

/**
 * The free space a shrunk file system keeps beyond its source's used bytes:
 * max(10 % of used, 64 MiB). 10 % covers the file system's own growth of
 * metadata on a fresh layout (inode tables, journal, btrfs chunk slack);
 * 64 MiB keeps a small file system writable after the copy (logs, package
 * caches). The file system's minimum (FS_MIN_BYTES) applies on top.
 */
export function shrinkMarginBytes(usedBytes: number): number {
  return Math.max(Math.ceil(usedBytes / 10), 64 * MIB);
}

/** The smallest size a file-level target of this content may have (used + margin, at least the fs minimum). */
export function minimumFileLevelBytes(content: Content): number {
  if (content.kind === 'swap') return FS_MIN_BYTES.swap;
  if (content.kind !== 'filesystem') return 0;
  return Math.max(FS_MIN_BYTES[content.fsType], content.usedBytes + shrinkMarginBytes(content.usedBytes));
}

/** Whether a volume is copied as blocks in this mode: everything in block mode; in file mode an ESP (vfat) and a partition with no file system to mount. */
export function isBlockCopied(content: Content, mode: CopyMode): boolean {
  if (mode === 'block') return true;
  return content.kind === 'filesystem' && content.fsType === 'vfat';
}

export interface ValidateOptions {
  /** File system types this receiver can create (its mkfs tools); default: all of FILE_SYSTEMS. */
  fsTypes?: readonly FileSystemType[];
}

/** The longest label each mkfs writes whole, in bytes (ext4 and swap 16, xfs 12, vfat 11, btrfs 255). */
const LABEL_BYTES: Record<FileSystemType, number> = { ext2: 16, ext3: 16, ext4: 16, xfs: 12, btrfs: 255, vfat: 11, swap: 16 };

const invalid = (msg: string) => new FerryError('FERRY_LAYOUT_INVALID', `layout: ${msg}`);

/**
 * The UUID each mkfs is given, as blkid prints it: a vfat volume id is
 * 8 hex digits split by a dash ('1A2B-3C4D'; mkfs.vfat -i takes them without
 * it), every other file system an RFC 4122 UUID. Anything else fails in mkfs
 * after the partition tables were written, or worse, is taken as a keyword:
 * mkfs.ext4 -U accepts 'random', 'time' and 'clear', and fstab's UUID= then
 * finds nothing.
 */
const UUID_FORMS: Record<'vfat' | 'other', { re: RegExp; form: string }> = {
  vfat: { re: /^[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}$/, form: "a vfat volume id of 8 hex digits as blkid prints it ('1A2B-3C4D')" },
  other: { re: /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/, form: "a UUID of 32 hex digits as blkid prints it ('0b4a3c2e-52a4-4d0c-8d0e-2b3f0a6c9e01')" },
};

/** Whether `uuid` is a file system UUID (not vfat's volume id) in the form blkid prints: 32 hex digits, dashed 8-4-4-4-12. */
export function isFsUuid(uuid: string): boolean {
  return UUID_FORMS.other.re.test(uuid);
}

export function validateLayout(layout: Layout, disks: SystemDisk[], mode: CopyMode, options: ValidateOptions = {}): void {
  const fsTypes = new Set<string>(options.fsTypes ?? FILE_SYSTEMS);
  const given = new Map(disks.map((d) => [d.name, d]));
  const ids = new Set<string>();
  const claim = (id: string, where: string) => {
    if (ids.has(id)) throw invalid(`the id ${JSON.stringify(id)} is used twice (${where}); every partition and logical volume needs its own`);
    ids.add(id);
  };
  const diskNames = new Set<string>();
  const vgNames = new Set(layout.volumeGroups.map((v) => v.name));
  const pvsOf = new Map<string, number>();

  const checkContent = (content: Content, what: string, sizeBytes: number, sourceSizeBytes: number | undefined) => {
    if (content.kind === 'filesystem' || content.kind === 'swap') {
      const type = content.kind === 'swap' ? 'swap' : content.fsType;
      if (!fsTypes.has(type)) {
        throw new FerryError(
          'FERRY_FS_UNSUPPORTED',
          `${what}: the receiver cannot create file system type ${JSON.stringify(type)} (it creates ${[...fsTypes].join(', ')})`,
        );
      }
      const min = FS_MIN_BYTES[type as FileSystemType];
      if (sizeBytes < min) throw invalid(`${what}: ${fmt(sizeBytes)} is below the smallest ${type} mkfs creates, ${fmt(min)}`);
      // What the receiver makes (file level: every file system; block level: swap) gets the label asked, whole:
      // mkfs.xfs and mkfs.vfat fail on a longer one after the tables were written, mkfs.ext4 and mkswap cut it (fstab's LABEL= then finds nothing).
      const maxLabel = LABEL_BYTES[type as FileSystemType];
      const labelBytes = Buffer.byteLength(content.label, 'utf8');
      if ((mode === 'file' || content.kind === 'swap') && labelBytes > maxLabel) {
        throw invalid(`${what}: the label ${JSON.stringify(content.label)} is ${labelBytes} bytes; a ${type} label holds at most ${maxLabel}`);
      }
      // The same for its UUID ('' = none: mkfs makes a fresh one).
      const uuidForm = UUID_FORMS[type === 'vfat' ? 'vfat' : 'other'];
      if ((mode === 'file' || content.kind === 'swap') && content.uuid !== '' && !uuidForm.re.test(content.uuid)) {
        throw invalid(`${what}: the ${type} UUID ${JSON.stringify(content.uuid)} is not ${uuidForm.form}`);
      }
    }
    if (content.kind === 'lvm-pv') {
      // pvcreate --uuid takes LVM's own form: 32 characters of [0-9A-Za-z!#], dashes anywhere ('fJ3ssT-8nBm-…'); checked where the receiver makes the PV.
      if (mode === 'file' && content.uuid !== '' && !/^[0-9A-Za-z!#]{32}$/.test(content.uuid.replace(/-/g, ''))) {
        throw invalid(`${what}: the LVM physical volume UUID ${JSON.stringify(content.uuid)} is not LVM's form of 32 characters (letters, digits, '!' or '#') with dashes as pvs prints it`);
      }
      if (!vgNames.has(content.vg)) throw invalid(`${what}: an LVM physical volume of volume group ${JSON.stringify(content.vg)}, which volumeGroups does not list`);
      pvsOf.set(content.vg, (pvsOf.get(content.vg) ?? 0) + sizeBytes);
    }
    if (sourceSizeBytes === undefined || sizeBytes >= sourceSizeBytes) return;
    // The target is smaller than the source: only a file-level copy of a file system can shrink.
    if (isBlockCopied(content, mode) || content.kind === 'none') {
      throw new FerryError(
        'FERRY_LAYOUT_NO_FIT',
        `${what}: ${fmt(sizeBytes)} is smaller than its source, ${fmt(sourceSizeBytes)}; it is copied block for block, which cannot shrink ` +
          `(give it at least the source's size${mode === 'block' ? ', or migrate at file level' : ''})`,
      );
    }
    if (content.kind === 'filesystem') {
      const used = content.usedBytes;
      const margin = shrinkMarginBytes(used);
      if (sizeBytes < used + margin) {
        throw new FerryError(
          'FERRY_LAYOUT_NO_FIT',
          `${what}: shrunk to ${fmt(sizeBytes)}, but its source file system uses ${fmt(used)} and a shrunk file system keeps a margin of ` +
            `${fmt(margin)} (max(10 % of used, 64 MiB)): it needs at least ${fmt(used + margin)}`,
        );
      }
    }
  };

  for (const disk of layout.disks) {
    if (diskNames.has(disk.name)) throw invalid(`disk ${JSON.stringify(disk.name)} appears twice`);
    diskNames.add(disk.name);
    const target = given.get(disk.name);
    if (!target) {
      throw new FerryError(
        'SMS.0411',
        `the layout names disk ${JSON.stringify(disk.name)}, which this receiver was not given (it has ${
          disks.length > 0 ? disks.map((d) => `${d.name} (${fmt(d.sizeBytes)})`).join(', ') : 'no --disk at all'
        })`,
      );
    }
    const sector = target.sectorBytes;
    const numbers = new Set<number>();
    const where = (id: string) => `disk ${disk.name} partition ${id}`;
    for (const p of disk.partitions) {
      claim(p.id, where(p.id));
      if (numbers.has(p.number)) throw invalid(`${where(p.id)}: partition number ${p.number} is used twice on the disk`);
      numbers.add(p.number);
      if (p.sizeBytes <= 0 || p.sizeBytes % sector !== 0) throw invalid(`${where(p.id)}: size ${p.sizeBytes} is not a positive multiple of the ${sector}-byte sector`);
      if (p.startBytes !== undefined && p.startBytes % sector !== 0) throw invalid(`${where(p.id)}: start ${p.startBytes} is not on a ${sector}-byte sector boundary`);
    }
    if (disk.table === 'gpt') {
      if (disk.partitions.length > 128) throw invalid(`disk ${disk.name}: ${disk.partitions.length} partitions, GPT holds 128`);
      for (const p of disk.partitions) {
        if (p.logical) throw invalid(`${where(p.id)}: GPT has no logical partitions`);
        if (isExtended(p) && !/-/.test(p.type)) throw invalid(`${where(p.id)}: an MBR type on a GPT disk`);
      }
    } else {
      const primaries = disk.partitions.filter((p) => !p.logical);
      const extended = primaries.filter(isExtended);
      const logicals = disk.partitions.filter((p) => p.logical);
      if (primaries.length > 4) throw invalid(`disk ${disk.name}: ${primaries.length} primary and extended partitions, MBR holds 4 (put the rest into an extended partition as logical ones)`);
      if (extended.length > 1) throw invalid(`disk ${disk.name}: ${extended.length} extended partitions (${extended.map((p) => p.id).join(', ')}), MBR allows one`);
      for (const p of primaries) if (p.number > 4) throw invalid(`${where(p.id)}: a primary or extended MBR partition is numbered ${p.number}, not 1 to 4`);
      if (logicals.length > 0 && extended.length === 0) throw invalid(`disk ${disk.name}: logical partitions (${logicals.map((p) => p.id).join(', ')}) but no extended partition to hold them`);
      logicals.forEach((p, i) => {
        if (p.number !== 5 + i) throw invalid(`${where(p.id)}: logical partitions are numbered 5, 6, … in order; this one is ${p.number}, expected ${5 + i}`);
      });
      for (const p of extended) if (p.content.kind !== 'none') throw invalid(`${where(p.id)}: an extended partition holds logical partitions, not ${p.content.kind}`);
      if (disk.partitions.some((p) => /-/.test(p.type))) throw invalid(`disk ${disk.name}: a GPT type GUID on an MBR disk`);
    }
    const placement = placePartitions(disk, sector);
    if (placement.problems.length > 0) throw invalid(`disk ${disk.name}: ${placement.problems[0]}`);
    if (disk.table === 'dos') {
      const over = placement.partitions.find((p) => p.endBytes / sector > 2 ** 32);
      if (over) throw invalid(`${where(over.id)}: ends past 2 TiB (2^32 sectors), which MBR cannot address; use GPT`);
    }
    if (placement.neededBytes > target.sizeBytes) {
      throw new FerryError(
        'SMS.1315',
        `disk ${disk.name}: the partitions need ${fmt(placement.neededBytes)} (${disk.partitions.length} partitions, each on a 1 MiB boundary` +
          `${disk.table === 'gpt' ? ", plus GPT's backup header and entries at the end" : ", each logical one behind a 1 MiB-aligned EBR"}), ` +
          `the target disk has ${fmt(target.sizeBytes)}: ${fmt(placement.neededBytes - target.sizeBytes)} short`,
      );
    }
    // An extended partition holds no data of its own: its size follows its logical partitions'.
    for (const p of disk.partitions) checkContent(p.content, where(p.id), p.sizeBytes, disk.table === 'dos' && isExtended(p) ? undefined : p.sourceSizeBytes);
  }

  for (const vg of layout.volumeGroups) {
    const pvBytes = pvsOf.get(vg.name);
    if (pvBytes === undefined) throw invalid(`volume group ${JSON.stringify(vg.name)} has no physical volume (no partition with content lvm-pv of it)`);
    const lvNames = new Set<string>();
    let need = 0;
    for (const lv of vg.logicalVolumes) {
      const what = `logical volume ${vg.name}/${lv.name} (${lv.id})`;
      claim(lv.id, what);
      if (lvNames.has(lv.name)) throw invalid(`${what}: the name is used twice in the volume group`);
      lvNames.add(lv.name);
      if (lv.content.kind === 'lvm-pv') throw invalid(`${what}: an LVM physical volume inside a logical volume (nested LVM) is not supported`);
      checkContent(lv.content, what, lv.sizeBytes, lv.sourceSizeBytes);
      need += alignUp(lv.sizeBytes, vg.extentBytes);
    }
    // Each PV gives its size less LVM's 1 MiB of metadata (pe_start), in whole extents; approximated over the sum.
    const pvCount = layout.disks.flatMap((d) => d.partitions).filter((p) => p.content.kind === 'lvm-pv' && p.content.vg === vg.name).length;
    const have = Math.floor(Math.max(0, pvBytes - pvCount * MIB) / vg.extentBytes) * vg.extentBytes;
    if (need > have) {
      throw new FerryError(
        'SMS.1315',
        `volume group ${vg.name}: its logical volumes need ${fmt(need)} (in ${vg.extentBytes}-byte extents), its ${pvCount} physical volume(s) give ${fmt(have)} ` +
          `(1 MiB of LVM metadata each): ${fmt(need - have)} short`,
      );
    }
  }
}
