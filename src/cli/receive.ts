// `ferry receive`: the receiver on the intermediate instance. Wiring only.

import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('receive')
    .description('Run the receiver: accept replication sessions over TLS and write them to the given targets.')
    .requiredOption('--listen <host:port>', 'address to listen on (port 0 picks a free port)')
    .requiredOption('--data <dir>', 'state directory: TLS identity, manifests, receiver.json')
    .option('--target <name=path>', 'a target: block device or image file (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--token <token>', 'join token agents must present (default: kept from receiver.json or generated)')
    .action(async (opts: { listen: string; data: string; target: string[]; token?: string }) => {
      const [{ default: pino }, { createLogger }, { parseTarget, startReceiver }] = await Promise.all([
        import('pino'),
        import('../platform/log.js'),
        import('../receiver/start.js'),
      ]);
      const log = createLogger({ name: 'ferry-receive', destination: pino.destination({ dest: 2, sync: false }) });
      const targets = opts.target.map(parseTarget);
      const { receiver, info } = await startReceiver({ listen: opts.listen, dataDir: opts.data, targets, token: opts.token, log });
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
