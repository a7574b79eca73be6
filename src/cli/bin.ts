#!/usr/bin/env node
// The `ferry` executable: runs the CLI and turns its result into an exit code.
import { main } from './main.js';
import { adoptLauncher } from '../platform/self-command.js';

// The packaged launcher's FERRY_LAUNCHER leaves the environment here, before
// anything can spawn a child (platform/self-command.ts).
adoptLauncher();

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ferry: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
