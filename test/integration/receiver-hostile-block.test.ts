// Block sessions against a real `ferry receive` child process, where the
// target's file system fills up or a peer with a valid token sends ZERO
// frames meant to make the receiver work without end:
// - a full file system (an image target on a small tmpfs) ends that session
//   with SMS.1315 while another migration goes on; once space is freed a
//   new pass completes and verifies (the manifest stayed true);
// - one ZERO frame for a whole 64 GiB sparse target is refused (a frame
//   covers at most 256 MiB, as the agent sends); 16 GiB of legal ZERO frames
//   stay holes (allocated blocks and RSS stay small);
// - SIGTERM during a flood of ZERO frames stops the receiver.
// After each, the receiver serves a legitimate migration (sha256 identical).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/requirements.js';
import { runFerry } from '../helpers/cli.js';
import { fillVolume, migrateArgs, parseSummaries, sha256Of, startReceiver, type RunningReceiver } from '../helpers/block.js';
import { sh } from '../helpers/loop.js';
import { memoryBytes } from '../helpers/proc.js';
import { openClientSession } from '../../src/replication/session/connect.js';
import { FrameType, encodeJsonFrame, encodeZeroFrame, type RawFrame } from '../../src/protocol/frames.js';

const env = needs({ root: true, tools: ['mount', 'umount', 'fallocate'] });

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function image(path: string, size: number, fill = true): string {
  sh('truncate', ['-s', String(size), path]);
  if (fill) fillVolume(path, size);
  return path;
}

describe.runIf(env.ok)('block targets under a full disk and hostile ZERO frames', () => {
  let base: string;
  let small: string;
  let mounted = false;
  let recv: RunningReceiver;
  let legitSrc: string;
  let legitRuns = 0;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'ferry-rx-hostile-block-'));
    small = join(base, 'small');
    mkdirSync(small);
    sh('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'ferry-test-full', small]);
    mounted = true;
    image(join(base, 'sparse.img'), 64 * GiB, false);
    legitSrc = image(join(base, 'legit-src.img'), 8 * MiB);
    recv = await startReceiver(join(base, 'receiver'), [
      `full=${join(small, 'disk.img')}`,
      `other=${join(base, 'other.img')}`,
      `sparse=${join(base, 'sparse.img')}`,
      `legit=${join(base, 'legit.img')}`,
    ]);
  });
  afterAll(async () => {
    await recv?.stop();
    if (mounted) sh('umount', [small]);
    rmSync(base, { recursive: true, force: true });
  });

  const address = () => ({ host: '127.0.0.1', port: recv.info.port, token: recv.info.token, fingerprint: recv.info.fingerprint });

  /** The receiver is alive and serves a legitimate block migration: the target is identical by sha256. */
  async function servesLegitimateMigration(): Promise<void> {
    expect(recv.child.exitCode).toBeNull();
    fillVolume(legitSrc, 8 * MiB); // new content each time
    const r = await runFerry(migrateArgs(recv.info, [`${legitSrc}=legit`]));
    expect(r.code, r.stderr).toBe(0);
    expect(await sha256Of(join(base, 'legit.img'))).toBe(await sha256Of(legitSrc));
    legitRuns++;
  }

  /** A block session sending raw frames; replies collected in arrival order. */
  async function hostileBlock(target: string, passId: string, sizeBytes: number) {
    const { channel, welcome } = await openClientSession(address(), { kind: 'block', target, passId, sizeBytes });
    const frames: RawFrame[] = [];
    let wake: (() => void) | undefined;
    channel.onFrame((f) => {
      frames.push(f);
      wake?.();
    });
    void channel.whenClosed().then(() => wake?.());
    return {
      channel,
      welcome,
      async next(type: number): Promise<RawFrame> {
        for (;;) {
          const i = frames.findIndex((f) => f.type === type || f.type === FrameType.ERROR);
          if (i >= 0) return frames.splice(i, 1)[0]!;
          if (channel.closed) throw new Error(`connection closed before a frame of type ${type}`);
          await new Promise<void>((r) => (wake = r));
        }
      },
    };
  }

  it('a full file system ends that session with SMS.1315, others go on, and a resumed pass completes', async () => {
    const size = 40 * MiB;
    const src = image(join(base, 'full-src.img'), size);
    const otherSrc = image(join(base, 'other-src.img'), 16 * MiB);
    const [full, other] = await Promise.all([
      runFerry(migrateArgs(recv.info, [`${src}=full`]), { timeoutMs: 60_000 }),
      runFerry(migrateArgs(recv.info, [`${otherSrc}=other`]), { timeoutMs: 60_000 }),
    ]);
    expect(full.code).not.toBe(0);
    expect(full.stderr).toMatch(/SMS\.1315/);
    expect(full.stderr).toMatch(/Insufficient free space on target partition full/);
    expect(other.code, other.stderr).toBe(0);
    expect(await sha256Of(join(base, 'other.img'))).toBe(await sha256Of(otherSrc));
    expect(recv.child.exitCode).toBeNull();
    expect(recv.stderr()).not.toMatch(/[Uu]nhandled/);

    // Space freed (the tmpfs grows): a new pass completes, checks every chunk against the manifest, and matches.
    sh('mount', ['-o', 'remount,size=64m', small]);
    const again = await runFerry([...migrateArgs(recv.info, [`${src}=full`]), '--verify'], { timeoutMs: 60_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(parseSummaries(again.stdout)[0]).toMatchObject({ volume: 'full', verified: true });
    expect(await sha256Of(join(small, 'disk.img'))).toBe(await sha256Of(src));
    await servesLegitimateMigration();
  });

  it('refuses a ZERO frame past 256 MiB and keeps 16 GiB of ZERO frames as holes, RSS bounded', async () => {
    const target = join(base, 'sparse.img');
    const one = await hostileBlock('sparse', 'zero-one-frame', 64 * GiB);
    await one.channel.send(encodeZeroFrame({ seq: 0, offset: 0, length: 64 * GiB }));
    const err = JSON.parse((await one.next(FrameType.ERROR)).body.toString()) as { code: string; message: string };
    expect(err.code).toBe('FERRY_FRAME_MALFORMED');
    expect(err.message).toMatch(/ZERO frame of 68719476736 bytes at 0: one frame covers at most 268435456 bytes/);
    one.channel.destroy();

    const rssBefore = memoryBytes(recv.child.pid!);
    const flood = await hostileBlock('sparse', 'zero-flood-pass', 64 * GiB);
    // 16 GiB of legal frames (64 × 256 MiB, twice the 32 the receiver queues before it pauses the connection).
    for (let i = 0; i < 64; i++) await flood.channel.send(encodeZeroFrame({ seq: i, offset: i * 256 * MiB, length: 256 * MiB }));
    await flood.channel.send(encodeJsonFrame(FrameType.COMMIT, { id: 1, frontier: 16 * GiB }));
    const ack = await flood.next(FrameType.ACK);
    expect(ack.type, ack.body.toString()).toBe(FrameType.ACK);
    flood.channel.destroy();
    expect(statSync(target).size).toBe(64 * GiB);
    expect(statSync(target).blocks * 512).toBeLessThan(16 * MiB);
    expect(memoryBytes(recv.child.pid!)).toBeLessThan(rssBefore + 256 * MiB);
    await servesLegitimateMigration();
  });

  it('stops on SIGTERM during a flood of ZERO frames', async () => {
    const flood = await hostileBlock('sparse', 'zero-flood-sigterm', 64 * GiB);
    for (let i = 0; i < 256; i++) void flood.channel.send(encodeZeroFrame({ seq: i, offset: i * 256 * MiB, length: 256 * MiB })).catch(() => {});
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      recv.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    recv.child.kill('SIGTERM');
    // No SIGKILL fallback here: the receiver must end by itself (the test's timeout bounds the wait).
    const { code, signal } = await exited;
    expect(signal).toBeNull();
    expect(code).toBe(0);
    flood.channel.destroy();
    expect(statSync(join(base, 'sparse.img')).blocks * 512).toBeLessThan(16 * MiB);
  }, 60_000);
});
