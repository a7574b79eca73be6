// `ferry agent`: the daemon. Wiring only — config, logging, state store and
// the ports; the behaviour lives in src/agent/daemon.ts.

import type { Command } from 'commander';
import { defaultConfigPath } from '../config/default-paths.js';

/** Seconds a graceful stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 10_000;

export function register(program: Command): void {
  program
    .command('agent')
    .description('run the migration agent daemon: register with the control plane, take its commands, replicate')
    .option('--config <path>', 'agent config file (YAML or JSON)', defaultConfigPath())
    .action(async (flags: { config: string }) => {
      // Loaded here, not at the top: every `ferry` run would pay for them.
      const [{ loadAgentConfig, configRedactions }, { AgentDaemon }, { AgentLogging }, { StateStore }, { discoveryInventory }, { engineReplication }, { createSmsPort }, { wholeServerFlow }] =
        await Promise.all([
          import('../config/agent-config.js'),
          import('../agent/daemon.js'),
          import('../agent/logging.js'),
          import('../agent/state-store.js'),
          import('../agent/inventory-port.js'),
          import('../agent/replication-port.js'),
          import('../agent/sms-port.js'),
          import('../agent/whole-server-port.js'),
        ]);
      const config = await loadAgentConfig(flags.config);
      const logging = new AgentLogging({
        level: config.log.level,
        file: config.log.file,
        maxSizeMb: config.log.max_size_mb,
        maxFiles: config.log.max_files,
        secrets: configRedactions(config),
      });
      const log = logging.log;
      const opened = await StateStore.open(config.data_dir);
      if (opened.quarantined) log.warn({ movedTo: opened.quarantined, reason: opened.reason }, 'agent state was corrupt: set aside, starting fresh');

      const ac = new AbortController();
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals > 1) {
          log.warn({ signal: sig }, 'second signal: exiting now');
          process.exit(130);
        }
        log.info({ signal: sig }, 'signal received: stopping gracefully');
        ac.abort();
        setTimeout(() => {
          log.error('graceful stop took too long; exiting');
          process.exit(1);
        }, STOP_DEADLINE_MS).unref();
      };
      const sigs: NodeJS.Signals[] = process.platform === 'win32' ? ['SIGINT', 'SIGBREAK', 'SIGTERM'] : ['SIGTERM', 'SIGINT'];
      for (const s of sigs) process.on(s, onSignal);

      const { port, client } = await createSmsPort(config, log, ac.signal);
      const daemon = new AgentDaemon({
        config,
        cp: port,
        inventory: discoveryInventory({ includeLoop: config.include_loop_devices, log }),
        replication: engineReplication({ manifestDir: opened.store.manifestDir, dataDir: config.data_dir }),
        // Whole-server tasks lay out and copy Linux systems only; elsewhere every task copies its volumes.
        ...(process.platform === 'linux' && {
          wholeServer: wholeServerFlow({ stateDir: opened.store.manifestDir, dataDir: config.data_dir, sourceRoot: config.system.source_root, sourceDisks: config.system.source_disks, configure: config.system.configure, keepStaticNetwork: config.system.keep_static_network }),
        }),
        store: opened.store,
        logging,
      });
      try {
        await daemon.run(ac.signal);
      } finally {
        await opened.store.flush().catch(() => {});
        await client.close().catch(() => {});
        for (const s of sigs) process.off(s, onSignal);
        logging.close();
      }
    });
}
