// The agent's persisted state: atomic, validated, private, survives reopen;
// a corrupt file is set aside instead of crashing the daemon; DELETE forgets
// the source but keeps the machine identity.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StateStore, readState } from '../../../src/agent/state-store.js';
import { identityFromParts, readMachineIdentity } from '../../../src/agent/identity.js';

describe('state store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-state-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts empty, persists updates atomically with mode 0600, and reads them back', async () => {
    const { store } = await StateStore.open(join(dir, 'data'));
    expect(store.get().sourceId).toBeUndefined();
    await store.update((s) => {
      s.sourceId = 'src-1';
      s.task = { id: 't-1', type: 'MIGRATE_BLOCK', status: 'running', syncing: false, passesDone: 0, volumes: {} };
    });
    const st = await stat(store.file);
    expect(st.mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'data'))).mode & 0o777).toBe(0o700);
    const again = await readState(join(dir, 'data'));
    expect(again?.sourceId).toBe('src-1');
    expect(again?.task?.status).toBe('running');
    expect((await readdir(join(dir, 'data'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('rejects an invalid update before writing it', async () => {
    const { store } = await StateStore.open(dir);
    await store.update((s) => void (s.sourceId = 'ok'));
    expect(() => store.update((s) => ((s.task as unknown) = { id: '' }))).toThrow();
    expect((await readState(dir))?.sourceId).toBe('ok');
  });

  it('coalesces lazy progress updates and writes them on flush', async () => {
    const { store } = await StateStore.open(dir);
    await store.update((s) => {
      s.task = { id: 't', type: 'MIGRATE_BLOCK', status: 'running', syncing: false, passesDone: 0, volumes: {} };
    });
    for (let i = 1; i <= 50; i++) {
      store.updateLazily((s) => {
        s.task!.volumes['0_1'] = { kind: 'block', totalBytes: 100, doneBytes: i, wireBytes: 0 };
      }, 60_000);
    }
    expect((await readState(dir))?.task?.volumes['0_1']).toBeUndefined();
    await store.flush();
    expect((await readState(dir))?.task?.volumes['0_1']?.doneBytes).toBe(50);
  });

  it('sets a corrupt state file aside and starts fresh', async () => {
    await writeFile(join(dir, 'state.json'), '{"version": 1, "sourceId": 42');
    const opened = await StateStore.open(dir);
    expect(opened.quarantined).toMatch(/state\.json\.corrupt-\d+$/);
    expect(opened.reason).toMatch(/not valid JSON/);
    expect(opened.store.get().sourceId).toBeUndefined();
    await writeFile(join(dir, 'state.json'), JSON.stringify({ version: 1, sourceId: 42, updatedAt: 'x' }));
    await expect(readState(dir)).rejects.toThrow(/state\.json: agent state is invalid at sourceId/);
  });

  it('forgets the source, task and manifests on DELETE but keeps the identity', async () => {
    const { store } = await StateStore.open(dir);
    const identity = identityFromParts({ machineId: 'abc', hostname: 'h' });
    await mkdir(store.manifestDir, { recursive: true });
    await writeFile(join(store.manifestDir, 'disk0.manifest'), 'x');
    await store.update((s) => {
      s.identity = identity;
      s.sourceId = 'src';
      s.task = { id: 't', type: 'MIGRATE_FILE', status: 'waiting', syncing: true, passesDone: 2, volumes: {} };
    });
    await store.forgetSource();
    const s = await readState(dir);
    expect(s?.sourceId).toBeUndefined();
    expect(s?.task).toBeUndefined();
    expect(s?.identity).toEqual(identity);
    await expect(readFile(join(store.manifestDir, 'disk0.manifest'))).rejects.toThrow();
  });
});

describe('machine identity', () => {
  it('does not depend on a MAC and changes when any part changes', () => {
    const a = identityFromParts({ machineId: 'M1', productUuid: '4C4C4544-0042-3510-8052-B4C04F4D4E31', hostname: 'web1' });
    expect(a.machineId).toBe('m1');
    expect(identityFromParts({ machineId: 'm1', productUuid: '4c4c4544-0042-3510-8052-b4c04f4d4e31', hostname: 'WEB1' }).fingerprint).toBe(a.fingerprint);
    expect(identityFromParts({ machineId: 'm2', productUuid: a.productUuid, hostname: 'web1' }).fingerprint).not.toBe(a.fingerprint);
    expect(identityFromParts({ machineId: 'm1', productUuid: a.productUuid, hostname: 'web2' }).fingerprint).not.toBe(a.fingerprint);
  });

  it('ignores firmware placeholder UUIDs', () => {
    const a = identityFromParts({ machineId: 'm', productUuid: '00000000-0000-0000-0000-000000000000', hostname: 'h' });
    expect(a.productUuid).toBeUndefined();
    expect(identityFromParts({ machineId: 'm', productUuid: '03000200-0400-0500-0006-000700080009', hostname: 'h' }).fingerprint).toBe(a.fingerprint);
  });

  it('reads this machine', async () => {
    const id = await readMachineIdentity();
    expect(id.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(id.hostname.length).toBeGreaterThan(0);
    expect(id.machineId ?? id.productUuid).toBeTruthy();
  });
});
