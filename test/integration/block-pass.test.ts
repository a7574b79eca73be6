// Block replication between real loop devices through a real receiver
// process: a full pass, then deltas after scattered writes, a volume that is
// mostly zeros, the consistency check, and the target-too-small refusal.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFerry } from '../helpers/cli.js';
import { LoopDisk } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';
import { fillVolume, migrateArgs, parseSummaries, scatterWrites, sha256Of, startReceiver, type RunningReceiver } from '../helpers/block.js';

const env = needs({ root: true, tools: ['losetup'] });
const MiB = 1024 * 1024;
const SIZE = 96 * MiB;

describe.runIf(env.ok)('block pass between loop devices', () => {
  let dir: string;
  const disks: LoopDisk[] = [];
  let src: LoopDisk;
  let dst: LoopDisk;
  let sparseSrc: LoopDisk;
  let recv: RunningReceiver;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-block-pass-'));
    src = LoopDisk.create(SIZE, 'ferry-bp-src-');
    dst = LoopDisk.create(SIZE, 'ferry-bp-dst-');
    sparseSrc = LoopDisk.create(SIZE, 'ferry-bp-zsrc-');
    disks.push(src, dst, sparseSrc);
    fillVolume(src.device, SIZE);
    // Mostly zeros: 3 MiB of data in 96 MiB.
    scatterWrites(sparseSrc.device, SIZE, 3, MiB);
    recv = await startReceiver(join(dir, 'recv'), [`disk0=${dst.device}`, `zeros=${join(dir, 'zeros.img')}`, `small=${join(dir, 'small.img')}`]);
  });

  afterAll(async () => {
    await recv?.stop();
    for (const d of disks) d.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies the volume in full, then sends only the changed chunks', async () => {
    const full = await runFerry(migrateArgs(recv.info, [`${src.device}=disk0`]));
    expect(full.stderr).toBe('');
    expect(full.code).toBe(0);
    const [s1] = parseSummaries(full.stdout);
    expect(s1).toMatchObject({ volume: 'disk0', pass: 'full', totalBytes: SIZE, bytesRead: SIZE });
    expect(await sha256Of(dst.device)).toBe(await sha256Of(src.device));

    // 40 scattered 64 KiB writes: each touches at most 3 chunks of 32 KiB.
    scatterWrites(src.device, SIZE, 40, 64 * 1024);
    const delta = await runFerry(migrateArgs(recv.info, [`${src.device}=disk0`]));
    expect(delta.code).toBe(0);
    const [s2] = parseSummaries(delta.stdout);
    expect(s2!.pass).toBe('delta');
    expect(await sha256Of(dst.device)).toBe(await sha256Of(src.device));
    expect(s2!.bytesOnWire).toBeLessThan(40 * 3 * 32 * 1024 + 200 * 1024);
    expect(s2!.digest).not.toBe(s1!.digest);

    // Nothing changed: only the manifest and control frames cross the wire.
    const idle = await runFerry([...migrateArgs(recv.info, [`${src.device}=disk0`]), '--verify']);
    expect(idle.code).toBe(0);
    const [s3] = parseSummaries(idle.stdout);
    expect(s3).toMatchObject({ pass: 'delta', digest: s2!.digest, verified: true, bytesSkippedUnchanged: expect.any(Number) });
    expect(s3!.bytesOnWire).toBeLessThan(SIZE / 1000);
    // Its 96 MiB were scanned as two unchanged stretches (64 + 32 MiB, source-reader.ts Stretches): counted as the
    // delta counted them read by read, and the digest above is the one the delta computed from the bytes.
    expect(s3).toMatchObject({ bytesRead: SIZE, bytesSkippedZero: s2!.bytesSkippedZero });
    expect(s3!.bytesSkippedUnchanged + s3!.bytesSkippedZero).toBe(SIZE);
  });

  it('skips zero regions: a mostly empty volume sends little more than its data', async () => {
    const r = await runFerry(migrateArgs(recv.info, [`${sparseSrc.device}=zeros`]));
    expect(r.code).toBe(0);
    const [s] = parseSummaries(r.stdout);
    expect(s!.bytesSkippedZero).toBeGreaterThan(SIZE - 4 * MiB);
    expect(s!.bytesOnWire).toBeLessThan(4 * MiB);
    expect(await sha256Of(join(dir, 'zeros.img'))).toBe(await sha256Of(sparseSrc.device));
    // Again, nothing changed: scanned as unchanged stretches, its zeros counted as the full pass counted them.
    const again = await runFerry(migrateArgs(recv.info, [`${sparseSrc.device}=zeros`]));
    expect(again.code).toBe(0);
    const [s2] = parseSummaries(again.stdout);
    expect(s2).toMatchObject({ pass: 'delta', digest: s!.digest, bytesRead: SIZE, bytesSkippedZero: s!.bytesSkippedZero });
    expect(s2!.bytesSkippedUnchanged).toBe(SIZE - s!.bytesSkippedZero);
  });

  it('refuses a target smaller than the source with SMS.1315, and keeps serving', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'small.img'), Buffer.alloc(MiB));
    const r = await runFerry(migrateArgs(recv.info, [`${src.device}=small`]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SMS\.1315/);
    const again = await runFerry(migrateArgs(recv.info, [`${sparseSrc.device}=zeros`]));
    expect(again.code).toBe(0);
  });
});
