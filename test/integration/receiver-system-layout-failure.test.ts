// A tool that fails in the middle of laying out (issue 15): the receiver
// makes file systems four at a time and mounts the target tree while the
// last ones are still being made; when one mkfs fails, the receiver answers
// FERRY_LAYOUT_FAILED naming the tool, and only after every mkfs it started
// has ended and everything it mounted (the tree's '/' was mounted while the
// failing mkfs ran) is unmounted again and the disk detached. The record
// stays 'laying-out', so the same layout asked again (the tool mended) wipes
// and lays out from scratch, on a receiver that served on throughout.
//
// The failure is a real child process: an `mkfs.xfs` first on the
// receiver's PATH that works for a while and then reports a write error, as
// a failing disk would make the real tool do.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { LayoutSchema, type Layout } from '../../src/layout/model.js';
import { startReceiver, type RunningReceiver } from '../helpers/block.js';
import { sh } from '../helpers/loop.js';
import { needs } from '../helpers/requirements.js';
import { SystemClient } from '../helpers/system-client.js';
import { expectParentsFirst, mountsUnder } from '../helpers/mounts.js';

const MiB = 1024 * 1024;
const env = needs({ root: true, tools: ['sfdisk', 'partx', 'losetup', 'blkid', 'mkfs.ext4', 'mkfs.xfs', 'wipefs'] });
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

function layout(): Layout {
  const fs = (fsType: 'ext4' | 'xfs', uuid: string, label: string, mountPoint: string) => ({ kind: 'filesystem' as const, fsType, uuid, label, mountPoint });
  return LayoutSchema.parse({
    version: 1,
    disks: [
      {
        name: 'a',
        sizeBytes: 768 * MiB,
        table: 'gpt',
        partitions: [
          { id: 'ap1', number: 1, sizeBytes: 128 * MiB, type: LINUX, content: fs('ext4', '6a1f0b2c-3d4e-4f50-8a61-7b8c9d0e1f21', 'root', '/') },
          { id: 'ap2', number: 2, sizeBytes: 320 * MiB, type: LINUX, content: fs('xfs', '7b2f1c3d-4e5f-4a61-9b72-8c9d0e1f2a31', 'data', '/data') },
          { id: 'ap3', number: 3, sizeBytes: 128 * MiB, type: LINUX, content: fs('ext4', '8c3a2d4e-5f6a-4b72-8c83-9d0e1f2a3b41', 'srv', '/srv') },
        ],
      },
    ],
    volumeGroups: [],
  });
}


describe.runIf(env.ok)('a tool failing in the middle of laying out', () => {
  let dir: string;
  let data: string;
  let shim: string;
  let recv: RunningReceiver;
  const image = () => join(dir, 'a.img');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-layout-fail-'));
    data = join(dir, 'recv');
    shim = join(dir, 'bin');
    mkdirSync(shim);
    writeFileSync(join(shim, 'mkfs.xfs'), '#!/bin/sh\nsleep 1\necho "mkfs.xfs: pwrite failed: Input/output error" >&2\nexit 1\n');
    chmodSync(join(shim, 'mkfs.xfs'), 0o755);
    sh('truncate', ['-s', '768M', image()]);
    mkdirSync(join(dir, 'plain'));
    recv = await startReceiver(data, [`plain=${join(dir, 'plain')}`], ['--disk', `a=${image()}`], 0, { PATH: `${shim}:${process.env.PATH}` });
  }, 60_000);

  afterAll(async () => {
    await recv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers FERRY_LAYOUT_FAILED once everything it started has ended, with nothing left mounted or attached', async () => {
    const c = await SystemClient.open(recv.info, 'm1');
    const r = await c.request({ op: 'layout', mode: 'file', layout: layout(), relayout: false });
    c.close();
    expect(r).toBeInstanceOf(FerryError);
    expect((r as FerryError).code).toBe('FERRY_LAYOUT_FAILED');
    expect((r as FerryError).message).toMatch(/mkfs\.xfs.*Input\/output error/s);
    // '/' (ext4, made in well under the shim's second) is mounted while mkfs.xfs runs: unmounted again, the disk detached.
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
    expect(sh('losetup', ['-j', image(), '-O', 'NAME', '-n']).trim()).toBe('');
    expect(JSON.parse(readFileSync(join(data, 'systems/m1/layout.json'), 'utf8')).state).toBe('laying-out');
  }, 120_000);

  it('lays the same layout out from scratch once the tool works, and unmounts it at END', async () => {
    rmSync(join(shim, 'mkfs.xfs'));
    const c = await SystemClient.open(recv.info, 'm1');
    const r = await c.request({ op: 'layout', mode: 'file', layout: layout(), relayout: false });
    if (r instanceof Error) throw r;
    expect(r.op === 'layout' && r.state).toBe('created');
    const root = join(data, 'systems/m1/root');
    // '/data' and '/srv' are mounted side by side, each after '/'.
    const mounted = mountsUnder(root);
    expectParentsFirst(mounted);
    expect([...mounted].sort()).toEqual([root, join(root, 'data'), join(root, 'srv')]);
    const dev = sh('losetup', ['-j', image(), '-O', 'NAME', '-n']).trim();
    expect(sh('blkid', ['-p', '-s', 'TYPE', '-o', 'value', `${dev}p2`]).trim()).toBe('xfs');
    await c.end();
    expect(mountsUnder(join(data, 'systems'))).toEqual([]);
    expect(existsSync(join(data, 'systems/m1/layout.json'))).toBe(true);
  }, 120_000);
});
