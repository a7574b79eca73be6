// `ferry receive`: the receiver on the intermediate instance. Wiring only.

import { InvalidArgumentError, type Command } from 'commander';

function positiveInt(v: string): number {
  if (!/^[1-9]\d{0,8}$/.test(v)) throw new InvalidArgumentError('a positive whole number');
  return Number(v);
}

export function register(program: Command): void {
  program
    .command('receive')
    .description('Run the receiver: accept replication sessions over TLS and write them to the given targets.')
    .requiredOption('--listen <host:port>', 'address to listen on (port 0 picks a free port)')
    .requiredOption('--data <dir>', 'state directory: TLS identity, manifests, receiver.json')
    .option('--target <name=path>', 'a target: block device or image file (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--disk <name=device>', 'a whole disk the receiver may partition and format for whole-server migration: block device or image file (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--token <token>', 'join token agents must present (default: kept from receiver.json or generated)')
    .option(
      '--max-connections <n>',
      'connections waiting to authenticate at once, from all addresses; more are refused (authenticated sessions never count) (default: 64)',
      positiveInt,
    )
    .option(
      '--max-connections-per-address <n>',
      'connections waiting to authenticate at once from one source address (default: 8)',
      positiveInt,
    )
    .option(
      '--handshake-timeout <seconds>',
      'seconds a connection may take for its TLS handshake, and again for its HELLO, before it is closed (default: 10)',
      positiveInt,
    )
    .action(async (opts: { listen: string; data: string; target: string[]; disk: string[]; token?: string; maxConnections?: number; maxConnectionsPerAddress?: number; handshakeTimeout?: number }) => {
      const [{ default: pino }, { createLogger }, { parseTarget, startReceiver }, { parseDisk }] = await Promise.all([
        import('pino'),
        import('../platform/log.js'),
        import('../receiver/start.js'),
        import('../receiver/system/disks.js'),
      ]);
      const log = createLogger({ name: 'ferry-receive', destination: pino.destination({ dest: 2, sync: false }) });
      const targets = opts.target.map(parseTarget);
      const disks = opts.disk.map(parseDisk);
      // Defaults (the numbers in the help above) are connection-limits.ts's
      // DEFAULT_CONNECTION_LIMITS, applied by the receiver: importing that
      // module here would load the receiver on every `ferry` start-up.
      const limits = {
        ...(opts.maxConnections === undefined ? {} : { maxPending: opts.maxConnections }),
        ...(opts.maxConnectionsPerAddress === undefined ? {} : { maxPendingPerAddress: opts.maxConnectionsPerAddress }),
        ...(opts.handshakeTimeout === undefined ? {} : { handshakeTimeoutMs: opts.handshakeTimeout * 1000 }),
      };
      const { receiver, info } = await startReceiver({ listen: opts.listen, dataDir: opts.data, targets, disks, token: opts.token, log, limits });
      // Handlers go in before the readiness line: whoever reads that line may
      // signal at once, and a signal with no handler yet would kill us uncleanly.
      const stopped = new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      process.stdout.write(`ferry receiver listening on ${info.host}:${info.port} fingerprint=${info.fingerprint} token=${info.token}\n`);
      await stopped;
      await receiver.close();
    });
}
