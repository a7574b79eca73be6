// Whole-server benchmark (issue 15). The two-disk source server of
// test/helpers/system-lab.ts in its `usr` variant (GPT disk: BIOS boot, ESP,
// /boot ext4, / xfs, a btrfs with @, @home and a read-only snapshot, swap;
// MBR disk: /data xfs, two logical ext4, an LVM PV), its file systems filled
// with trees copied from this machine's /usr (about 650 MB, some 40,000
// entries). It compares, in the same run, on blank target image disks of the
// source's sizes:
//   ferry:     `ferry receive --disk …` + `ferry migrate --system --no-configure`
//              (the lab is not a bootable system, and the hand-made side configures nothing); file
//              level: discovery, layout, every file system, ESP and BIOS boot
//              partition as blocks, swap recreated)
//   hand-made: what an operator scripts: the same partition tables through
//              `sfdisk -d | sfdisk`, mkfs of every file system with its UUID
//              and label, btrfs subvolumes, the ESP and BIOS boot partition
//              with dd, then per file system
//              `tar --xattrs --acls | lz4 -1 | socat` → `socat | lz4 -d | tar x`
//              into the mounted target.
// Runs alternate (hand-made, ferry) FERRY_BENCH_RUNS times (default 3) with
// the page cache dropped before each side; medians are printed. Each ferry
// run gets fresh blank disks (a first migration, layout included).

import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FERRY, NODE_FLAGS, ROOT, WORK, sh, freePort, timed, startProcess, stop, peakRssMb, ensureWork, fmtBytes, table, ratio, dropCaches } from './lib.mjs';

const RUNS = Number(process.env.FERRY_BENCH_RUNS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** test/helpers/system-lab.ts is TypeScript: bundle it once with esbuild (a dev dependency) for this plain-JS runner. */
async function loadLab(dir) {
  const out = join(dir, 'system-lab.mjs');
  const { build } = await import('esbuild');
  await build({ entryPoints: [join(ROOT, 'test/helpers/system-lab.ts')], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'error' });
  return import(pathToFileURL(out).href);
}

function attach(image) {
  const dev = sh(`losetup --find --show --partscan ${image}`).trim();
  sh(`partx -u ${dev} || true`);
  return dev;
}

/** Partition nodes of a loop device, adding any the kernel's scan left out (see system-lab.ts). */
function partNode(dev, n) {
  const p = `${dev}p${n}`;
  try {
    sh(`test -b ${p} || partx -a -n ${n}:${n} ${dev}`);
  } catch {
    /* reported by the caller's next use */
  }
  return p;
}

/** The operator's script: tables, mkfs with the source's UUIDs and labels, subvolumes, dd of ESP/BIOS boot, then tar|lz4|socat per file system. */
async function handMade(lab, dir) {
  const targets = lab.disks.map((d) => {
    const img = join(dir, `hand-${d.name}.img`);
    rmSync(img, { force: true });
    sh(`truncate -s ${d.sizeBytes} ${img}`);
    return img;
  });
  const devs = [];
  const mounted = [];
  const t0 = process.hrtime.bigint();
  let cpu = 0;
  let headStart = 0n; // the listeners' head starts: idle time, not part of moving the data (files.mjs excludes it too)
  try {
    lab.disks.forEach((d, i) => {
      sh(`sfdisk -d ${d.device} | sed '/^last-lba:/d' | sfdisk -q --no-reread --no-tell-kernel ${targets[i]}`);
      devs.push(attach(targets[i]));
    });
    const tgtOf = (p) => partNode(devs[lab.disks.findIndex((d) => d.name === p.disk)], p.number);
    for (const p of lab.parts) {
      const t = tgtOf(p);
      if (p.fsType === 'ext4') sh(`mkfs.ext4 -q -F -U ${p.uuid} -L ${p.label} ${t}`);
      else if (p.fsType === 'xfs') sh(`mkfs.xfs -q -f -m uuid=${p.uuid} -L ${p.label} ${t}`);
      // btrfs without -U: mkfs.btrfs refuses a UUID another btrfs on this machine (the source) has; ferry's receiver does the same here (its reply notes it).
      else if (p.fsType === 'btrfs') sh(`mkfs.btrfs -q -f -L ${p.label} ${t}`);
      else if (p.fsType === 'swap') sh(`mkswap -q -U ${p.uuid} -L ${p.label} ${t}`);
      else if (p.fsType === 'vfat' || p.type === lab.GPT_TYPES?.biosBoot || p.name === 'BIOS boot') sh(`dd if=${p.device} of=${t} bs=4M conv=fsync status=none`);
    }
    // btrfs: the subvolumes and the default, then each copied through the top level.
    const top = join(dir, 'hand-btrfs-top');
    mkdirSync(top, { recursive: true });
    const bt = lab.parts.find((p) => p.fsType === 'btrfs');
    sh(`mount ${tgtOf(bt)} ${top}`);
    mounted.push(top);
    for (const s of lab.btrfs.subvolumes) sh(`btrfs -q subvolume create ${join(top, s.path)}`);
    sh(`btrfs subvolume set-default ${join(top, lab.btrfs.defaultSubvolume)}`);
    const srcTop = join(dir, 'hand-src-top');
    mkdirSync(srcTop, { recursive: true });
    sh(`mount -o ro,subvolid=5 ${bt.device} ${srcTop}`);
    mounted.push(srcTop);
    const copies = lab.btrfs.subvolumes.map((s) => ({ from: join(srcTop, s.path), to: join(top, s.path) }));
    // The other file systems, mounted one by one (flat: no nesting needed for a copy).
    for (const p of lab.parts.filter((x) => ['ext4', 'xfs'].includes(x.fsType))) {
      const m = join(dir, `hand-mnt-${p.disk}p${p.number}`);
      mkdirSync(m, { recursive: true });
      // nouuid: the target xfs has the source's UUID and the source is mounted on this same machine.
      sh(`mount ${p.fsType === 'xfs' ? '-o nouuid ' : ''}${tgtOf(p)} ${m}`);
      mounted.push(m);
      const src = lab.mounts.find((x) => x.device === p.device).path;
      copies.push({ from: src, to: m });
    }
    for (const c of copies) {
      const port = await freePort();
      const rx = timed(`socat -u TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr - | lz4 -d -c | tar --xattrs --acls --numeric-owner -x -C ${c.to}`);
      const h0 = process.hrtime.bigint();
      await new Promise((r) => setTimeout(r, 200));
      headStart += process.hrtime.bigint() - h0;
      const tx = await timed(`tar --xattrs --acls --numeric-owner --one-file-system -C ${c.from} -cf - . | lz4 -1 -c | socat -u - TCP:127.0.0.1:${port}`);
      const r = await rx;
      cpu += tx.cpu + r.cpu;
    }
    sh('sync');
  } finally {
    for (const m of mounted.reverse()) sh(`umount ${m} || umount -l ${m}`);
    for (const d of devs) sh(`losetup -d ${d}`);
  }
  return { wall: Number(process.hrtime.bigint() - t0 - headStart) / 1e9, cpu };
}

async function ferryRun(lab, dir, i) {
  const data = join(dir, `ferry-recv-${i}`);
  rmSync(data, { recursive: true, force: true });
  const disks = lab.disks.map((d) => {
    const img = join(dir, `ferry-${i}-${d.name}.img`);
    rmSync(img, { force: true });
    sh(`truncate -s ${d.sizeBytes} ${img}`);
    return `--disk=${d.name}=${img}`;
  });
  const port = await freePort();
  const recv = await startProcess(process.execPath, [...NODE_FLAGS, FERRY, 'receive', '--listen', `127.0.0.1:${port}`, '--data', data, ...disks], /fingerprint/i);
  try {
    const info = JSON.parse(readFileSync(join(data, 'receiver.json'), 'utf8'));
    const state = join(dir, `ferry-state-${i}`);
    rmSync(state, { recursive: true, force: true });
    const srcDisks = lab.disks.map((d) => `--source-disk ${d.device}`).join(' ');
    dropCaches();
    const r = await timed(
      `node ${NODE_FLAGS.join(' ')} ${FERRY} migrate --to 127.0.0.1:${port} --token ${info.token} --fingerprint ${info.fingerprint} --system --mode file --no-configure --source-root ${lab.root} ${srcDisks} --migration-id bench${i} --state ${state} --json`,
    );
    const summary = JSON.parse(r.stdout.trim().split('\n').pop());
    return { ...r, summary, recvRss: peakRssMb(recv.pid), images: lab.disks.map((d) => join(dir, `ferry-${i}-${d.name}.img`)) };
  } finally {
    await stop(recv);
  }
}

// What the file engine leaves out by design (replication/file/excludes.ts): the contents of these, and lost+found.
const ENGINE_EXCLUDED_CONTENTS = ['/proc', '/sys', '/dev', '/run', '/tmp', '/var/run', '/var/lock', '/mnt', '/media'];

/**
 * rsync -aHAX --dry-run between every source file system and its target: the
 * count of differing entries (0 = identical). Each source file system is
 * read through a non-recursive bind of its mount, so a mount point shows the
 * directory beneath it (as the copy does), not the root of what is mounted on it.
 */
function compare(lab, dir, images) {
  const devs = images.map(attach);
  const mounted = [];
  let differ = 0;
  try {
    const tgtOf = (p) => partNode(devs[lab.disks.findIndex((d) => d.name === p.disk)], p.number);
    for (const m of lab.mounts) {
      const p = lab.parts.find((x) => x.device === m.device);
      const at = join(dir, `cmp-${mounted.length}`);
      mkdirSync(at, { recursive: true });
      sh(`mount -o ro${m.fsType === 'xfs' ? ',nouuid' : ''}${m.options ? `,${m.options}` : ''} ${tgtOf(p)} ${at}`);
      mounted.push(at);
      const src = join(dir, `cmp-src-${mounted.length}`);
      mkdirSync(src, { recursive: true });
      sh(`mount --bind ${m.path} ${src}`);
      mounted.push(src);
      const excludes = ENGINE_EXCLUDED_CONTENTS.filter((d) => m.mountPoint === '/' || d.startsWith(`${m.mountPoint}/`))
        .map((d) => `--exclude='${m.mountPoint === '/' ? d : d.slice(m.mountPoint.length)}/*'`)
        .join(' ');
      const out = sh(`rsync -aHAX --numeric-ids --dry-run --itemize-changes --delete --exclude=/lost+found ${excludes} ${src}/ ${at}/`).trim();
      if (out) {
        differ += out.split('\n').length;
        console.log(`differences in ${m.mountPoint}:\n${out.split('\n').slice(0, 10).join('\n')}`);
      }
    }
  } finally {
    for (const m of mounted.reverse()) sh(`umount ${m} || umount -l ${m}`);
    for (const d of devs) sh(`losetup -d ${d}`);
  }
  return differ;
}

export async function run() {
  ensureWork();
  const dir = join(WORK, 'system');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const lab = await loadLab(dir);
  console.log('# whole-server benchmark: building the two-disk source server with /usr trees …');
  const server = await lab.buildSourceServer(join(dir, 'src'), { usr: true });
  try {
    const used = sh(`df -B1 --output=used ${server.mounts.map((m) => m.path).join(' ')} | tail -n +2`).trim().split('\n').reduce((a, b) => a + Number(b), 0);
    const entries = Number(sh(`find ${server.mounts.map((m) => m.path).join(' ')} -xdev | wc -l`).trim());
    console.log(`source: ${server.disks.length} disks, ${server.mounts.length} mounted file systems, ${fmtBytes(used)} used, ${entries} entries; caches dropped before each side`);
    const s = { ...server, GPT_TYPES: lab.GPT_TYPES };
    const hand = [];
    const fer = [];
    for (let i = 0; i < RUNS; i++) {
      dropCaches();
      hand.push(await handMade(s, dir));
      const f = await ferryRun(s, dir, i);
      f.differ = compare(s, dir, f.images);
      for (const img of f.images) rmSync(img, { force: true });
      fer.push(f);
      console.log(`run ${i + 1}/${RUNS}: hand-made ${hand[i].wall.toFixed(2)} s, ferry ${f.wall.toFixed(2)} s (differences: ${f.differ})`);
      const vols = f.summary.volumes.filter((v) => v.summary).map((v) => `${v.id} ${(v.summary.durationMs / 1000).toFixed(2)}`);
      console.log(`  ferry per volume (s): ${vols.join(', ')}; total ${(f.summary.durationMs / 1000).toFixed(2)}`);
    }
    const last = fer[fer.length - 1].summary;
    table(`whole server, file level, median of ${RUNS} alternating runs, cold caches`, [
      { contender: 'hand-made: sfdisk + mkfs + tar|lz4|socat per fs', wall_s: median(hand.map((h) => h.wall)).toFixed(2), cpu_s: median(hand.map((h) => h.cpu)).toFixed(2), peak_rss_MB: 'n/a', identical: 'n/a' },
      {
        contender: 'ferry migrate --system (layout included)',
        wall_s: median(fer.map((f) => f.wall)).toFixed(2),
        cpu_s: median(fer.map((f) => f.cpu)).toFixed(2),
        peak_rss_MB: `${Math.max(...fer.map((f) => f.rssMb)).toFixed(0)} agent / ${Math.max(...fer.map((f) => f.recvRss)).toFixed(0)} receiver`,
        identical: fer.every((f) => f.differ === 0),
      },
    ]);
    console.log(`volumes: ${(last.volumes ?? []).map((v) => `${v.id}(${v.kind}${v.skipped ? `, ${v.skipped}` : ''})`).join(' ')}`);
    console.log(`ferry / hand-made wall-time ratio: ${ratio(median(fer.map((f) => f.wall)), median(hand.map((h) => h.wall)))}  (goal ≤ 1.00; runs: ${fer.map((f, i) => ratio(f.wall, hand[i].wall)).join(', ')})`);
  } finally {
    server.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
}

