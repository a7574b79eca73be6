#!/usr/bin/env node
// The `ferry` executable: runs the CLI and turns its result into an exit code.
import { main } from './main.js';
import { adoptLauncher } from '../platform/self-command.js';

// The packaged launcher's FERRY_LAUNCHER leaves the environment here, before
// anything can spawn a child (platform/self-command.ts).
adoptLauncher();

// More libuv threads than the default 4: the file engine reads many small
// files at once so cold reads overlap. Takes effect because nothing has used
// the thread pool yet (no work happens at import time).
process.env.UV_THREADPOOL_SIZE ??= '16';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ferry: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
