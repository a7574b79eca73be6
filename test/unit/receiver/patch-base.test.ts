// The copy a patch is written into: the same bytes and mode as the file, and
// where the file system cannot clone (this machine's /tmp is ext4), its holes
// stay holes instead of becoming zeros on the disk.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyPatchBase } from '../../../src/receiver/patch-base.js';

const MiB = 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'ferry-patch-base-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('copyPatchBase', () => {
  it('a sparse file: same bytes and mode, the holes kept (64 MiB apparent, a few KiB on the disk)', async () => {
    const from = join(dir, 'sparse.img');
    const fd = openSync(from, 'w', 0o640);
    writeSync(fd, Buffer.alloc(8192, 0x11), 0, 8192, 4096);
    writeSync(fd, Buffer.alloc(100, 0x22), 0, 100, 40 * MiB);
    closeSync(fd);
    execFileSync('truncate', ['-s', String(64 * MiB), from]);
    const to = join(dir, 'sparse.copy');
    await copyPatchBase(from, to);
    expect(readFileSync(to).equals(readFileSync(from))).toBe(true);
    expect(statSync(to).mode & 0o7777).toBe(0o640);
    expect(statSync(to).size).toBe(64 * MiB);
    expect(statSync(to).blocks * 512).toBeLessThan(MiB);
  });

  it('a sparse file too fragmented for a data map (over 16,384 ranges): still copied without its holes', async () => {
    const from = join(dir, 'fragmented.img');
    const fd = openSync(from, 'w', 0o600);
    const block = Buffer.alloc(4096, 0x44);
    for (let i = 0; i < 17_000; i++) writeSync(fd, block, 0, 4096, i * 16384); // every fourth 4 KiB block
    closeSync(fd);
    execFileSync('truncate', ['-s', String(17_000 * 16384 + 1000), from]);
    const to = join(dir, 'fragmented.copy');
    await copyPatchBase(from, to);
    expect(readFileSync(to).equals(readFileSync(from))).toBe(true);
    // 17,000 data blocks (66 MiB) and some metadata, not the file's 266 MiB.
    expect(statSync(to).blocks * 512).toBeLessThan(100 * MiB);
  });

  it('a file without holes, and an empty one: copied whole', async () => {
    const from = join(dir, 'plain');
    writeFileSync(from, Buffer.alloc(3 * MiB + 7, 0x33), { mode: 0o600 });
    await copyPatchBase(Buffer.from(from), Buffer.from(join(dir, 'plain.copy')));
    expect(readFileSync(join(dir, 'plain.copy')).equals(readFileSync(from))).toBe(true);
    writeFileSync(join(dir, 'empty'), '');
    await copyPatchBase(join(dir, 'empty'), join(dir, 'empty.copy'));
    expect(statSync(join(dir, 'empty.copy')).size).toBe(0);
  });

  it('refuses to follow a symlink in place of the file', async () => {
    execFileSync('ln', ['-s', join(dir, 'plain'), join(dir, 'link')]);
    await expect(copyPatchBase(join(dir, 'link'), join(dir, 'link.copy'))).rejects.toMatchObject({ code: expect.stringMatching(/ELOOP|EINVAL/) });
  });
});
