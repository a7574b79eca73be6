// Boots a disk image under qemu-system-x86_64 for `ferry demo --system` and
// the boot tests (issue 16) and waits for the marker line the image's
// ferry-marker.service prints on the serial console (debian-server.sh). TCG only (no KVM on
// these machines: a boot to multi-user takes about 40 s), -m 1024 -smp 2,
// the serial console on qemu's stdout (written to a log file when the boot
// fails, for diagnosis), `-netdev user,restrict=on` (qemu's own DHCP; nothing leaves
// the process). Disks are opened with snapshot=on: a boot never changes the
// image it boots. UEFI boots with OVMF (Debian's ovmf package) and a private
// copy of its variable store. It owns the qemu process it starts and kills it
// whatever happens; it touches no other file than its log and its VARS copy.

import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../errors/ferry-error.js';

export const QEMU = 'qemu-system-x86_64';
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** GRUB writes to the serial console within seconds of power-on even under TCG on a busy machine; silence this long means nothing booted. */
const SILENCE_MS = 120_000;

export interface BootOptions {
  image: string;
  /** 'ide': a legacy source (PIIX IDE, which Debian's cloud kernel drives: it has no AHCI); 'virtio': a migrated target. */
  disk: 'ide' | 'virtio';
  firmware?: 'bios' | 'uefi';
  /** The NIC's MAC (52:54:00:…). */
  mac: string;
  /** qemu NIC model; the cloud kernel has virtio-net but not e1000. */
  nicModel?: string;
  /** Where the console log goes (default TMPDIR/ferry-boot-logs); kept only when the boot fails (the error names it). */
  logDir?: string;
  timeoutMs?: number;
}

export interface BootMarker {
  /** findmnt's SOURCE of / (/dev/sda3, /dev/vda3). */
  root: string;
  /** The UUID of /. */
  uuid: string;
  /** The size of / in bytes (findmnt SIZE): shows a grown file system. */
  rootBytes: number;
  /** Global IPv4 addresses with prefix (10.0.2.15/24); empty when none. */
  ipv4: string[];
}

export interface BootResult {
  marker: BootMarker;
  /** The serial console up to the marker. */
  console: string;
  seconds: number;
}

/** Console lines after which the marker can never come: fail at once instead of waiting for the timeout. */
export const DEAD_END_RE = /Dropping to a shell!|Kernel panic - not syncing[^\r\n]*|No bootable device[^\r\n]*|grub rescue>|BdsDxe: No bootable option|Shell> /;

/** The marker line, complete: the console arrives in chunks, and a line cut short must not be read. */
export const MARKER_RE = /FERRY-BOOT-MARKER root=(\S+) uuid=(\S*) size=(\d*) ipv4=(\S+?)\r?\n/;

export function qemuArgs(o: BootOptions, varsCopy?: string): string[] {
  const args = ['-machine', 'pc', '-accel', 'tcg', '-m', '1024', '-smp', '2', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot'];
  args.push('-drive', `file=${o.image},format=raw,if=${o.disk},snapshot=on`);
  args.push('-netdev', 'user,id=n0,restrict=on', '-device', `${o.nicModel ?? 'virtio-net-pci'},netdev=n0,mac=${o.mac}`);
  if (o.firmware === 'uefi') {
    if (!varsCopy) throw new FerryError('FERRY_TOOL_FAILED', 'a UEFI boot needs a copy of the OVMF variable store');
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,unit=1,file=${varsCopy}`);
  }
  return args;
}

/**
 * Boots `image` and resolves with the marker once it is printed; rejects
 * (with the log's path and its tail) when qemu exits first or the timeout
 * passes. qemu is killed in every case before this returns.
 */
export function bootAndWaitForMarker(o: BootOptions): Promise<BootResult> {
  const logDir = o.logDir ?? join(tmpdir(), 'ferry-boot-logs');
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `console-${new Date().toISOString().replace(/[:.]/g, '-')}-${o.disk}.log`);
  const work = mkdtempSync(join(tmpdir(), 'ferry-qemu-'));
  let varsCopy: string | undefined;
  if (o.firmware === 'uefi') {
    if (!existsSync(OVMF_CODE)) throw new FerryError('FERRY_TOOL_MISSING', `${OVMF_CODE} is missing: install Debian's ovmf package`);
    varsCopy = join(work, 'OVMF_VARS.fd');
    copyFileSync(OVMF_VARS, varsCopy);
  }
  const started = Date.now();
  const child = spawn(QEMU, qemuArgs(o, varsCopy), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  return new Promise<BootResult>((resolve, reject) => {
    let settled = false;
    const finish = (e: Error | undefined, r?: BootResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(silence);
      if (e) writeFileSync(logPath, out + (err ? `\n--- qemu stderr ---\n${err}` : ''));
      const done = () => {
        rmSync(work, { recursive: true, force: true });
        if (e) reject(e);
        else resolve(r!);
      };
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once('exit', done);
      child.kill('SIGKILL');
    };
    const fail = (code: 'FERRY_TOOL_FAILED' | 'FERRY_TOOL_MISSING' | 'FERRY_TOOL_TIMEOUT', why: string) =>
      finish(new FerryError(code, `${why}; the console log is in ${logPath}; its end:\n${out.slice(-3000)}${err ? `\nqemu stderr: ${err.slice(-1000)}` : ''}`));
    const timer = setTimeout(() => fail('FERRY_TOOL_TIMEOUT', `no boot marker on the serial console within ${(o.timeoutMs ?? 300_000) / 1000} s`), o.timeoutMs ?? 300_000);
    // SeaBIOS writes to the screen only: a disk without boot code leaves the serial console silent for good.
    const silence = setTimeout(() => {
      if (out === '') fail('FERRY_TOOL_FAILED', `nothing on the serial console within ${SILENCE_MS / 1000} s: no boot loader started (no boot code on the disk, or nothing the firmware can boot)`);
    }, SILENCE_MS);
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const dead = DEAD_END_RE.exec(out);
      if (dead) return fail('FERRY_TOOL_FAILED', `the system cannot finish booting: "${dead[0]}" on the serial console`);
      const m = MARKER_RE.exec(out);
      if (m) {
        const marker: BootMarker = { root: m[1]!, uuid: m[2]!, rootBytes: Number(m[3] || 0), ipv4: m[4] === 'none' ? [] : m[4]!.split(',') };
        finish(undefined, { marker, console: out, seconds: Math.round((Date.now() - started) / 1000) });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', (e: NodeJS.ErrnoException) => fail(e.code === 'ENOENT' ? 'FERRY_TOOL_MISSING' : 'FERRY_TOOL_FAILED', `${QEMU} did not start (${e.message}): install qemu-system-x86`));
    child.on('exit', (code, signal) => fail('FERRY_TOOL_FAILED', `qemu exited (${code ?? signal}) before the boot marker`));
  });
}
