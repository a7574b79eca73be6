// `ferry control-plane`: runs the local SMS v3-compatible control plane
// (src/sms-server) until SIGINT/SIGTERM.

import type { Command } from 'commander';
import { UsageError } from '../errors/ferry-error.js';
import type { CredentialsFile } from '../sms-server/credentials.js';

interface Opts {
  listen: string;
  data?: string;
  http?: boolean;
  ak?: string;
  sk?: string;
  credentials?: string;
}

export function register(program: Command): void {
  program
    .command('control-plane')
    .description('Run a local SMS v3-compatible control plane with its own store (HTTPS with a self-signed certificate by default).')
    .option('--listen <addr>', 'HOST:PORT to listen on (port 0 picks a free port)', '127.0.0.1:8443')
    .option('--data <dir>', 'data directory: store, TLS identity, uploaded logs, control-plane.json')
    .option('--http', 'serve plain HTTP instead of HTTPS')
    .option('--ak <key>', 'accept this access key (with --sk)')
    .option('--sk <secret>', 'the secret key for --ak (or set FERRY_CP_SK)')
    .option('--credentials <file>', 'JSON or YAML file of access_keys [{ak, sk}] and users [{name, password, domain}], mode 0600')
    .action(async (opts: Opts) => {
      if (!opts.data) throw new UsageError('--data DIR is required');
      const [{ Credentials, loadCredentialsFile }, { startControlPlane }, { createLogger }] = await Promise.all([
        import('../sms-server/credentials.js'),
        import('../sms-server/control-plane.js'),
        import('../platform/log.js'),
      ]);
      const sk = opts.sk ?? process.env.FERRY_CP_SK;
      if ((opts.ak === undefined) !== (sk === undefined)) throw new UsageError('--ak and --sk go together');
      const file: CredentialsFile = opts.credentials ? await loadCredentialsFile(opts.credentials) : { access_keys: [], users: [] };
      if (opts.ak !== undefined && sk !== undefined) {
        if (sk.length < 8) throw new UsageError('--sk must be at least 8 characters');
        file.access_keys.push({ ak: opts.ak, sk });
      }
      const log = createLogger({ name: 'control-plane' });
      let fatal: (() => void) | undefined;
      const cp = await startControlPlane({
        listen: opts.listen,
        dataDir: opts.data,
        http: opts.http,
        credentials: new Credentials(file),
        log,
        onFatal: () => {
          process.exitCode = 1;
          fatal?.();
        },
      });
      // Handlers go in before the readiness line (see receive.ts).
      const stopped = new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          cp.close().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        fatal = stop;
      });
      process.stdout.write(
        `ferry control-plane listening url=${cp.info.url} fingerprint=${cp.info.fingerprint ?? 'none'} data=${opts.data}\n`,
      );
      await stopped;
      log.flush();
    });
}
