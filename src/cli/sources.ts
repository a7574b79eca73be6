// `ferry sources [list|show|adjust|delete]`: the source servers an SMS
// control plane knows (4.1.3, 4.1.8, 4.1.5, 4.1.7).

import type { Command } from 'commander';
import { UsageError } from '../errors/ferry-error.js';
import { adjustmentBody, parseSize, type AdjustChange } from '../sms/source-adjustments.js';
import { formatDate, printJson, printTable, withClient, withConnection, type ConnectionOpts } from './sms-connection.js';

export function register(program: Command): void {
  const sources = program.command('sources').description('List, show, adjust or delete the source servers registered with a control plane.');

  withConnection(sources.command('list', { isDefault: true }).description('list source servers'))
    .option('--state <state>', 'only sources in this state')
    .option('--limit <n>', 'at most this many', '200')
    .action(async (opts: ConnectionOpts & { state?: string; limit: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 0 || limit > 200) throw new UsageError('--limit must be 0 to 200');
      await withClient(opts, async (c) => {
        const res = await c.listSources({ limit, ...(opts.state ? { state: opts.state as never } : {}) });
        if (opts.json) return printJson(res);
        printTable(
          res.source_servers.map((s) => ({
            id: s.id, name: s.name, ip: s.ip, os: s.os_type, state: s.state, cycle: s.migration_cycle,
            connected: s.connected ? 'yes' : 'no', task: s.current_task ? `${s.current_task.id} ${s.current_task.state}` : '', added: formatDate(s.add_date),
          })),
          ['id', 'name', 'ip', 'os', 'state', 'cycle', 'connected', 'task', 'added'],
        );
      });
    });

  withConnection(sources.command('show').argument('<source-id>').description('show one source server in full (JSON)')).action(
    async (id: string, opts: ConnectionOpts) => {
      await withClient(opts, async (c) => printJson(await c.getSource(id)));
    },
  );

  const collect = (v: string, acc: string[]) => [...acc, v];
  withConnection(
    sources
      .command('adjust')
      .argument('<source-id>')
      .description('choose what a task created from this source migrates, and resize (PUT /v3/sources/{id}: need_migration, adjust_size)'),
  )
    .option('--skip <id>', 'leave out a disk (N), partition (N_M), volume group (VG) or logical volume (VG:LV); repeatable', collect, [] as string[])
    .option('--keep <id>', 'migrate it again after a --skip; repeatable', collect, [] as string[])
    .option('--size <id=size>', 'its size on the target: bytes, or with K, M, G, T (binary); repeatable', collect, [] as string[])
    .action(async (id: string, opts: ConnectionOpts & { skip: string[]; keep: string[]; size: string[] }) => {
      const changes: AdjustChange[] = [
        ...opts.skip.map((v) => ({ id: v, skip: true as const })),
        ...opts.keep.map((v) => ({ id: v, keep: true as const })),
        ...opts.size.map((v) => {
          const eq = v.lastIndexOf('=');
          if (eq <= 0) throw new UsageError(`--size ${v}: give ID=SIZE, e.g. 0_2=10G`);
          return { id: v.slice(0, eq), size: parseSize(v.slice(eq + 1)) };
        }),
      ];
      if (changes.length === 0) throw new UsageError('nothing to change: give --skip, --keep or --size');
      await withClient(opts, async (c) => {
        await c.updateSource(id, adjustmentBody(await c.getSource(id), changes));
        const now = await c.getSource(id);
        if (opts.json) return printJson({ disks: now.disks, volume_groups: now.volume_groups });
        const rows: Record<string, unknown>[] = [];
        for (const d of (now.disks ?? []) as Record<string, any>[]) {
          rows.push({ id: d.id, name: d.name, size: d.size, migrate: d.need_migration === false ? 'no' : 'yes', 'target size': d.adjust_size });
          for (const p of (d.physical_volumes ?? []) as Record<string, any>[]) {
            rows.push({ id: p.id, name: p.name, size: p.size, migrate: p.need_migration === false ? 'no' : 'yes', 'target size': p.adjust_size });
          }
        }
        for (const g of (now.volume_groups ?? []) as Record<string, any>[]) {
          rows.push({ id: g.id, name: g.name, size: g.size, migrate: g.need_migration === false ? 'no' : 'yes', 'target size': g.adjust_size });
          for (const l of (g.logical_volumes ?? []) as Record<string, any>[]) {
            rows.push({ id: `${g.id}:${l.id}`, name: l.name, size: l.size, migrate: l.need_migration === false ? 'no' : 'yes', 'target size': l.adjust_size });
          }
        }
        printTable(rows, ['id', 'name', 'size', 'migrate', 'target size']);
      });
    });

  withConnection(sources.command('delete').argument('<source-id>').description('delete a source server record'))
    .option('--force', 'also delete its (not running) migration tasks')
    .action(async (id: string, opts: ConnectionOpts & { force?: boolean }) => {
      await withClient(opts, async (c) => {
        await c.deleteSource(id, { force: opts.force });
        process.stdout.write(`deleted source ${id}\n`);
      });
    });
}
