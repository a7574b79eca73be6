// `ferry sources [list|show|delete]`: the source servers an SMS control
// plane knows (4.1.3, 4.1.8, 4.1.7).

import type { Command } from 'commander';
import { UsageError } from '../errors/ferry-error.js';
import { formatDate, printJson, printTable, withClient, withConnection, type ConnectionOpts } from './sms-connection.js';

export function register(program: Command): void {
  const sources = program.command('sources').description('List, show or delete the source servers registered with a control plane.');

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

  withConnection(sources.command('delete').argument('<source-id>').description('delete a source server record'))
    .option('--force', 'also delete its (not running) migration tasks')
    .action(async (id: string, opts: ConnectionOpts & { force?: boolean }) => {
      await withClient(opts, async (c) => {
        await c.deleteSource(id, { force: opts.force });
        process.stdout.write(`deleted source ${id}\n`);
      });
    });
}
