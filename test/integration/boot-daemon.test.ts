// A migrated server boots (issue 16), the daemon flow: the legacy BIOS
// source of boot-source.test.ts (IDE disk, fstab and grub naming /dev/sda*,
// eth0 bound to its MAC), as a writable copy of the cached image, is
// migrated by `ferry agent` (system.source_root/source_disks, configure on)
// through `ferry control-plane` and `ferry receive --disk disk0=…` (a blank,
// SMALLER disk), all real child processes on 127.0.0.1. A MIGRATE_FILE task
// whose target_server is the source's layout fitted onto that disk reports
// FORMAT_DISK_LINUX_FILE → MIGRATE_LINUX_FILE → CONFIGURE_LINUX_FILE and
// succeeds. The source then changes: a new file, its fstab (naming
// /dev/sda*) written again so that the SYNC brings it back, and a line in
// its marker script that prints the new file on the console. The SYNC
// reports SYNC_LINUX_FILE → CONFIGURE_LINUX_FILE; the target's
// /var/log/ferry-configure.log shows two runs that each rewrote the fstab,
// and the fstab after the second equals the one after the first. Then the
// TARGET boots under qemu on a virtio disk and NIC: its marker shows / on
// the virtio disk and an address from qemu's DHCP, and the console shows the
// SYNC'd file. Root, the image tools and qemu are needed; run under
// /tmp/ferry-heavy.lock.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverSourceLayout } from '../../src/discovery/linux/source-layout.js';
import { planTargetLayout } from '../../src/layout/plan.js';
import { targetServerFromLayout } from '../../src/layout/sms-mapping.js';
import type { ImageSource } from '../../src/demo/image-source.js';
import { startAgentLab, type AgentLab, type LabAgent } from '../helpers/agent-lab.js';
import { QEMU_DHCP_ADDRESS, TARGET_MAC, attachSourceCopy } from '../helpers/boot-lab.js';
import { loopbackTaskBody } from '../helpers/control-plane.js';
import { DEBIAN_IMAGE_TOOLS, debianImage, type DebianImage } from '../helpers/debian-image.js';
import { QEMU, bootAndWaitForMarker } from '../helpers/qemu.js';
import { needs } from '../helpers/requirements.js';
import { AttachedImage, ReadOnlyMounts } from '../helpers/system-migrate.js';
import { createAndStartTask, expectMonotonic, progressHistory, untilMigrated } from '../helpers/task-progress.js';
import { until } from '../helpers/wait.js';

const GiB = 1024 ** 3;
const TARGET_BYTES = 2.5 * GiB;
const env = needs({ root: true, tools: [...DEBIAN_IMAGE_TOOLS, QEMU] });

/** The target's / (partition 3), mounted read-only once the receiver let go of the disk: its fstab and configure log. */
function readTarget(image: string, scratch: string): { fstab: string; log: string } {
  const disk = new AttachedImage(image, [3]);
  const mounts = new ReadOnlyMounts(scratch);
  try {
    const root = mounts.mount(disk.part(3), 'xfs');
    return { fstab: readFileSync(join(root, 'etc/fstab'), 'utf8'), log: readFileSync(join(root, 'var/log/ferry-configure.log'), 'utf8') };
  } finally {
    mounts.release();
    disk.release();
  }
}

/** The runs in a configure log, each a header line and the changes it made. */
const configureRuns = (log: string) => log.split(/^(?=# \S+ ferry configure: )/m).filter((r) => r.startsWith('# '));

describe.runIf(env.ok)('the agent daemon migrates a bootable server, configures it after every pass, and the target boots', () => {
  let image: DebianImage;
  let dir: string;
  let src: ImageSource | undefined;
  let lab: AgentLab | undefined;
  let agent: LabAgent;
  let taskId: string;
  let firstFstab: string;
  const token = randomBytes(8).toString('hex');

  const task = async () => (await lab!.cp.call('GET', `/v3/tasks/${taskId}`)).body;
  const history = () => progressHistory(lab!.cp, taskId);
  const context = () => agent.out() + lab!.recv.stderr();

  beforeAll(async () => {
    image = await debianImage('bios');
    dir = mkdtempSync(join(tmpdir(), 'ferry-boot-daemon-'));
    src = await attachSourceCopy(image, dir);
    lab = await startAgentLab({
      prefix: 'ferry-boot-daemon-lab-',
      volume: { kind: 'system', disks: [{ name: 'disk0', sizeBytes: TARGET_BYTES }], sourceRoot: src.root, sourceDisks: [src.device], configure: true },
      logFile: true,
      config: ['sync: {every_hours: 168}'],
    });
    agent = lab.startAgent();
  }, 15 * 60_000);

  afterAll(async () => {
    await lab?.stop({ agentSignal: 'SIGTERM' });
    await src?.detach();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lays out the smaller disk, copies, then configures the copy (FORMAT → MIGRATE → CONFIGURE), and succeeds', async () => {
    const { cp, recv } = lab!;
    const sourceId = await until('registration', async () => (await lab!.state())?.sourceId, 90_000, context);
    // The source's layout fitted onto the receiver's disk (as `ferry migrate --system` plans it): / shrinks toward its used space.
    const { layout } = await discoverSourceLayout({ sourceRoot: src!.root, sourceDisks: [src!.device] });
    const fitted = planTargetLayout(layout, [{ name: 'disk0', sizeBytes: TARGET_BYTES, sectorBytes: 512 }], 'file');
    const body = { ...loopbackTaskBody({ name: 'boot', type: 'MIGRATE_FILE', sourceId, vmId: 'vm-boot', disks: [], receiver: recv.info }), target_server: { ...targetServerFromLayout(fitted, 'boot-target'), vm_id: 'vm-boot' } };
    taskId = await createAndStartTask(cp, body);
    await untilMigrated(cp, taskId, 10 * 60_000, context);

    const entries = await history();
    const names = entries.map((e) => e.subtask_name);
    expect([...new Set(names)]).toEqual(['FORMAT_DISK_LINUX_FILE', 'MIGRATE_LINUX_FILE', 'CONFIGURE_LINUX_FILE']);
    expect(names.lastIndexOf('FORMAT_DISK_LINUX_FILE')).toBeLessThan(names.indexOf('MIGRATE_LINUX_FILE'));
    expect(names.lastIndexOf('MIGRATE_LINUX_FILE')).toBeLessThan(names.indexOf('CONFIGURE_LINUX_FILE'));
    for (const name of new Set(names)) expectMonotonic(entries, name);
    expect(entries.at(-1)!.process_trace).toMatch(/^Debian GNU\/Linux 12 \(bookworm\): \d+ changes \(\/var\/log\/ferry-configure\.log on the target\)$/);
    expect((await task()).sub_tasks.map((s: { name: string; progress: number }) => [s.name, s.progress])).toEqual([
      ['FORMAT_DISK_LINUX_FILE', 100],
      ['MIGRATE_LINUX_FILE', 100],
      ['CONFIGURE_LINUX_FILE', 100],
    ]);

    const target = readTarget(lab!.disks.disk0!, dir);
    expect(configureRuns(target.log)).toHaveLength(1);
    expect(target.fstab).not.toMatch(/^\/dev\/sda/m);
    expect(target.fstab).toMatch(new RegExp(`^UUID=${image.rootUuid}\\s+/\\s`, 'm'));
    firstFstab = target.fstab;
  }, 15 * 60_000);

  it('after the source changed, a SYNC copies the changes and configures again (SYNC → CONFIGURE), with the same fstab as before', async () => {
    const { cp } = lab!;
    const root = src!.root;
    writeFileSync(join(root, 'etc/ferry-sync-check'), `${token}\n`);
    // The same fstab written again is a changed file to the SYNC: the target gets back its /dev/sda* names.
    const fstab = readFileSync(join(root, 'etc/fstab'), 'utf8');
    expect(fstab).toMatch(/^\/dev\/sda3\s+\/\s/m);
    writeFileSync(join(root, 'etc/fstab'), fstab);
    // The marker unit prints the SYNC'd file too, so the boot shows it.
    const marker = join(root, 'usr/local/sbin/ferry-marker');
    const script = readFileSync(marker, 'utf8').split('\n');
    script.splice(1, 0, 'echo "FERRY-SYNC-CHECK $(cat /etc/ferry-sync-check)" >/dev/ttyS0');
    writeFileSync(marker, script.join('\n'));

    const before = (await history()).length;
    const sync = await cp.call('POST', `/v3/tasks/${taskId}/action`, { operation: 'sync' });
    expect(sync.status, JSON.stringify(sync.body)).toBe(200);
    await until('the delta pass', async () => (await lab!.state())?.task?.passesDone === 2, 10 * 60_000, context);
    await until('MIGRATE_SUCCESS again', async () => (await task()).state === 'MIGRATE_SUCCESS', 60_000, context);
    const later = (await history()).slice(before);
    const names = later.map((e) => e.subtask_name);
    expect([...new Set(names)]).toEqual(['SYNC_LINUX_FILE', 'CONFIGURE_LINUX_FILE']);
    expect(names.lastIndexOf('SYNC_LINUX_FILE')).toBeLessThan(names.indexOf('CONFIGURE_LINUX_FILE'));
    expectMonotonic(later, 'SYNC_LINUX_FILE');
    expectMonotonic(later, 'CONFIGURE_LINUX_FILE');

    const target = readTarget(lab!.disks.disk0!, dir);
    const runs = configureRuns(target.log);
    expect(runs).toHaveLength(2);
    // Both runs found the source's /dev/sda3 in the fstab and named / by its UUID instead.
    for (const run of runs) expect(run).toMatch(new RegExp(`^/etc/fstab:\\d+: /dev/sda3 → UUID=${image.rootUuid} `, 'm'));
    expect(target.fstab).toBe(firstFstab);
  }, 15 * 60_000);

  it('the target boots from its virtio disk, comes up on its new NIC, and runs the SYNC\'d files', async () => {
    // The receiver let go of the disk at the end of the pass; qemu's snapshot=on never writes it.
    const boot = await bootAndWaitForMarker({ image: lab!.disks.disk0!, disk: 'virtio', mac: TARGET_MAC });
    expect(boot.marker.root).toBe('/dev/vda3');
    expect(boot.marker.uuid).toBe(image.rootUuid);
    expect(boot.marker.ipv4).toHaveLength(1);
    expect(boot.marker.ipv4[0]).toMatch(QEMU_DHCP_ADDRESS);
    expect(boot.console).toContain(`FERRY-SYNC-CHECK ${token}`);
  }, 15 * 60_000);
});
