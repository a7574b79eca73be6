// The 'system' session kind: the agent asks the receiver to lay out its whole
// target disks for one migration, then copies each volume over ordinary
// 'block' or 'file' sessions to the targets the reply names, and tells the
// receiver when a volume is complete (so it can grow a file system or write
// an ESP). The receiver keeps the layout mounted while this session is open
// and unmounts (and detaches its loop devices) when it ends.
//
// Frames (docs/wire-protocol.md): HELLO{kind:'system', target: migration id}
// → WELCOME{kindState.disks: JSON of SystemDisk[]}; then any number of
// SYSTEM_REQUEST (JSON SystemRequest) each answered by one SYSTEM_REPLY (JSON
// SystemReply) or an ERROR frame (which ends the session). The agent ends the
// session with END; the receiver unmounts and answers DONE.
// This file holds only the shapes; receiver/system/ and migration/ do the work.

import { z } from 'zod';
import { CopyMode, FileSystemType, LayoutSchema } from './model.js';

/** A whole disk the receiver was given (`--disk NAME=DEVICE`), as it tells the agent in WELCOME. */
export const SystemDiskSchema = z.object({
  name: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  /** Logical sector size (512 or 4096). */
  sectorBytes: z.number().int().positive(),
});
export type SystemDisk = z.infer<typeof SystemDiskSchema>;

export const SystemRequestSchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('layout'),
    mode: CopyMode,
    layout: LayoutSchema,
    /**
     * Wipe and lay out again even if the disks hold this migration's earlier
     * layout (a task restarted from scratch). Without it a changed layout is
     * refused (FERRY_LAYOUT_CHANGED) and the same layout is recognised, not redone.
     */
    relayout: z.boolean().default(false),
  }),
  /** A volume's pass is complete: grow its file system (block), write the ESP from its staging directory (vfat, file level). */
  z.object({ op: z.literal('volume-done'), id: z.string().max(64) }),
  /**
   * After the last volume of a pass: configure the copied system for its new
   * hardware (fstab, boot loader, initramfs drivers, network; docs/configure.md).
   * Idempotent: sent again after every pass.
   */
  z.object({
    op: z.literal('configure'),
    /** Keep the primary interface's static addresses instead of falling back to DHCP. */
    keepStaticNetwork: z.boolean().default(false),
  }),
]);
export type SystemRequest = z.input<typeof SystemRequestSchema>;

/** Where the agent copies one volume: an ordinary session of `kind` to receiver target `target`. */
export const VolumeTargetSchema = z.object({
  /** The layout volume id (partition or logical volume id; btrfs subvolume: 'disk0p4:@home'). */
  id: z.string(),
  kind: CopyMode,
  /** The receiver target name for the block/file session ('<migration>.<id>'). */
  target: z.string(),
  /** block: the target partition or disk size; file: the file system size. */
  sizeBytes: z.number().int().nonnegative(),
  fsType: FileSystemType.or(z.literal('')),
  /** Source mount point relative to the source root ('' when the volume is not mounted there). */
  mountPoint: z.string(),
  /** btrfs: the subvolume path below the top level the agent copies from and into. */
  subvolume: z.string().optional(),
  /** Set when a logical volume was laid out as a plain partition (no device-mapper): 'vg/lv'. */
  flattenedFrom: z.string().optional(),
  /** block: the whole disk is copied (source geometry kept); the last partition is grown after. */
  wholeDisk: z.boolean().optional(),
});
export type VolumeTarget = z.infer<typeof VolumeTargetSchema>;

export const SystemReplySchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('layout'),
    /** 'created': the disks were partitioned and formatted now; 'recognised': they already held this layout (nothing was written). */
    state: z.enum(['created', 'recognised']),
    /** The layout as made (LVs flattened into partitions where the receiver has no device-mapper). */
    layout: LayoutSchema,
    volumes: z.array(VolumeTargetSchema),
    /** One line per decision a person should know of ('vg0/root became partition disk0p5: no device-mapper'). */
    notes: z.array(z.string()),
    /** The staging root under which the target tree is mounted in mount order. */
    stagingRoot: z.string(),
  }),
  z.object({ op: z.literal('volume-done'), id: z.string(), actions: z.array(z.string()) }),
  z.object({
    op: z.literal('configure'),
    /** The distribution found (os-release PRETTY_NAME). */
    distro: z.string(),
    /** One line per change made (file:line: old → new, tools run). */
    changes: z.array(z.string()),
    /** Where the target keeps the list of changes (/var/log/ferry-configure.log). */
    log: z.string(),
  }),
]);
export type SystemReply = z.infer<typeof SystemReplySchema>;
