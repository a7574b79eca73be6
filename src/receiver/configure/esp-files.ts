// Files on the target's ESP, for the RHEL family's UEFI configuration
// (efi-grub-cfg.ts): mounted at /boot/efi in the chroot where the receiver
// can mount vfat (a real intermediate instance; the mount is the chroot's
// and goes with it), else read and written with mtools on the partition
// device (this kernel has no vfat). Paths are relative to the ESP's root
// ('EFI/redhat/grub.cfg').
// Must not touch: any partition but the ESP it is given.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../errors/ferry-error.js';
import { exec } from '../../platform/exec.js';
import type { Logger } from '../../platform/log.js';
import type { Chroot } from './chroot.js';
import type { TargetFiles } from './target-files.js';

export interface EspFiles {
  /** Where the ESP is in the chroot ('/boot/efi'), or undefined when it is reached with mtools. */
  mountedAt: string | undefined;
  /** Directories directly under EFI/ that hold a grub.cfg. */
  configDirs(): Promise<string[]>;
  read(path: string): Promise<string | undefined>;
  write(path: string, text: string): Promise<void>;
}

const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C' };
/** An mtools command (mdir, mtype, mcopy, mmd) on a FAT image or partition. */
export const mtool = (tool: string, args: string[]) => exec(tool, args, { env: MTOOLS_ENV, timeoutMs: 120_000 });

export async function openEsp(c: Chroot, files: TargetFiles, esp: string, log: Logger): Promise<EspFiles> {
  const at = '/boot/efi';
  let mounted = false;
  try {
    await c.mount(['-t', 'vfat', esp], at);
    mounted = true;
  } catch (e) {
    log.info({ err: errorMessage(e) }, 'the ESP cannot be mounted here (no vfat): read and written with mtools');
  }
  if (mounted) {
    return {
      mountedAt: at,
      async configDirs() {
        const out: string[] = [];
        for (const d of await files.list(`${at}/EFI`)) if (await files.exists(`${at}/EFI/${d}/grub.cfg`)) out.push(d);
        return out;
      },
      read: (p) => files.read(`${at}/${p}`),
      write: (p, text) => files.write(`${at}/${p}`, text),
    };
  }
  return {
    mountedAt: undefined,
    async configDirs() {
      const listing = (await mtool('mdir', ['-b', '-/', '-i', esp, '::/EFI']).catch(() => ({ stdout: '' }))).stdout;
      const dirs = new Set<string>();
      for (const l of listing.split('\n')) {
        const m = /^::\/EFI\/([^/]+)\/grub\.cfg\s*$/i.exec(l.trim());
        if (m) dirs.add(m[1]!);
      }
      return [...dirs];
    },
    async read(p) {
      try {
        return (await mtool('mtype', ['-i', esp, `::/${p}`])).stdout;
      } catch {
        return undefined;
      }
    },
    async write(p, text) {
      const tmp = await mkdtemp(join(tmpdir(), 'ferry-esp-'));
      try {
        await writeFile(join(tmp, 'f'), text);
        await mtool('mcopy', ['-o', '-i', esp, join(tmp, 'f'), `::/${p}`]);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  };
}
