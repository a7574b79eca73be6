// `ferry tasks create|list|show|start|stop|sync|delete`: migration tasks on
// an SMS control plane (4.2.1, 4.2.2, 4.2.5, 4.2.7, 4.2.4). `create` builds
// the target layout from the source's own disks and can carry the receiver
// (port, certificate fingerprint, join token) the agent will connect to.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ControlPlaneClient } from '../sms-client/client.js';
import type { TaskCreate } from '../sms/schemas/index.js';
import { targetServerFromSource } from '../sms/target-server.js';
import { UsageError } from '../errors/ferry-error.js';
import { normalizeFingerprint } from '../platform/tls-identity.js';
import { formatDate, printJson, printTable, withClient, withConnection, type ConnectionOpts } from './sms-connection.js';

interface CreateOpts extends ConnectionOpts {
  source?: string;
  name?: string;
  type: string;
  receiverHost?: string;
  receiverPort?: string;
  receiverFingerprint?: string;
  joinToken?: string;
  migrationIp?: string;
  region: string;
  project: string;
  start?: boolean;
  body?: string;
}

async function createTask(c: ControlPlaneClient, opts: CreateOpts): Promise<string> {
  if (opts.body) {
    const body = JSON.parse(await readFile(opts.body, 'utf8')) as TaskCreate;
    return (await c.createTask(body)).id;
  }
  if (!opts.source) throw new UsageError('--source ID is required (or --body FILE)');
  const type = opts.type === 'block' ? 'MIGRATE_BLOCK' : opts.type === 'file' ? 'MIGRATE_FILE' : undefined;
  if (!type) throw new UsageError('--type must be block or file');
  const receiverGiven = [opts.receiverPort, opts.receiverFingerprint, opts.joinToken ?? process.env.FERRY_JOIN_TOKEN].filter(Boolean).length;
  if (receiverGiven !== 0 && receiverGiven !== 3) {
    throw new UsageError('a receiver needs all of --receiver-port, --receiver-fingerprint and --join-token (or FERRY_JOIN_TOKEN)');
  }
  const src = await c.getSource(opts.source);
  if (src.os_type !== 'LINUX' && src.os_type !== 'WINDOWS') throw new UsageError(`source ${opts.source} reported no OS type`);
  let receiver: TaskCreate['receiver'];
  if (receiverGiven === 3) {
    const port = Number(opts.receiverPort);
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new UsageError('--receiver-port must be 1 to 65535');
    receiver = {
      port,
      fingerprint: normalizeFingerprint(opts.receiverFingerprint!),
      join_token: (opts.joinToken ?? process.env.FERRY_JOIN_TOKEN)!,
      ...(opts.receiverHost ? { host: opts.receiverHost } : {}),
    };
  }
  const body: TaskCreate = {
    name: opts.name ?? `ferry-${src.name ?? src.id}`,
    type,
    os_type: src.os_type,
    source_server: { id: opts.source },
    target_server: targetServerFromSource(src),
    region_name: opts.region,
    region_id: opts.region,
    project_name: opts.project,
    project_id: opts.project,
    ...(opts.migrationIp ?? opts.receiverHost ? { migration_ip: opts.migrationIp ?? opts.receiverHost } : {}),
    ...(opts.start ? { auto_start: true } : {}),
    ...(receiver ? { receiver } : {}),
  };
  return (await c.createTask(body)).id;
}

export function register(program: Command): void {
  const tasks = program.command('tasks').description('Create, list, show, start, stop, sync or delete migration tasks.');

  withConnection(tasks.command('create').description('create a migration task for a source server'))
    .option('--source <id>', 'the source server')
    .option('--name <name>', 'task name (default ferry-<source name>)')
    .option('--type <block|file>', 'block-level or file-level migration', 'block')
    .option('--receiver-host <host>', 'where the receiver listens (default: --migration-ip)')
    .option('--receiver-port <port>', 'the receiver\'s port')
    .option('--receiver-fingerprint <sha256>', 'the receiver certificate\'s SHA-256 fingerprint (ferry receive prints it)')
    .option('--join-token <token>', 'the join token the receiver accepts [env FERRY_JOIN_TOKEN]')
    .option('--migration-ip <ip>', 'the target (intermediate instance) address')
    .option('--region <name>', 'region name and id to record', 'local')
    .option('--project <name>', 'project name and id to record', 'local')
    .option('--start', 'start the task right away (auto_start)')
    .option('--body <file>', 'send this JSON file as the POST /v3/tasks body instead')
    .action(async (opts: CreateOpts) => {
      await withClient(opts, async (c) => {
        const id = await createTask(c, opts);
        if (opts.json) printJson({ id });
        else process.stdout.write(`${id}\n`);
      });
    });

  withConnection(tasks.command('list').description('list migration tasks'))
    .option('--state <state>', 'only tasks in this state')
    .option('--source <id>', 'only tasks of this source')
    .action(async (opts: ConnectionOpts & { state?: string; source?: string }) => {
      await withClient(opts, async (c) => {
        const res = await c.listTasks({
          limit: 200,
          ...(opts.state ? { state: opts.state as never } : {}),
          ...(opts.source ? { source_server_id: opts.source } : {}),
        });
        if (opts.json) return printJson(res);
        printTable(
          res.tasks.map((t) => {
            const running = (t.sub_tasks ?? []).filter((s) => s.end_date == null && s.start_date != null).at(-1) ?? (t.sub_tasks ?? []).at(-1);
            return {
              id: t.id, name: t.name, type: t.type, state: t.state, source: t.source_server?.id,
              progress: running ? `${running.name} ${running.progress ?? 0}%` : '', created: formatDate(t.create_date),
            };
          }),
          ['id', 'name', 'type', 'state', 'source', 'progress', 'created'],
        );
      });
    });

  withConnection(tasks.command('show').argument('<task-id>').description('show one task in full (JSON)')).action(async (id: string, opts: ConnectionOpts) => {
    await withClient(opts, async (c) => printJson(await c.getTask(id)));
  });

  for (const [name, operation, what] of [
    ['start', 'start', 'start (or resume) a task: queues START for its agent'],
    ['stop', 'stop', 'pause a running task: queues STOP'],
    ['sync', 'sync', 'run an incremental sync of a finished task: queues SYNC'],
    ['restart', 'restart', 'start a finished, failed or paused task again from the top'],
  ] as const) {
    withConnection(tasks.command(name).argument('<task-id>').description(what)).action(async (id: string, opts: ConnectionOpts) => {
      await withClient(opts, async (c) => {
        await c.taskAction(id, { operation });
        process.stdout.write(`${name}: task ${id}\n`);
      });
    });
  }

  withConnection(tasks.command('delete').argument('<task-id>').description('delete a task (not while it runs): queues DELETE for its agent')).action(
    async (id: string, opts: ConnectionOpts) => {
      await withClient(opts, async (c) => {
        await c.deleteTask(id);
        process.stdout.write(`deleted task ${id}\n`);
      });
    },
  );
}
