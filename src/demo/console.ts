// How the demo talks to the person running it: plain lines, and a live
// progress line that rewrites itself on a terminal and is printed at most
// every few seconds (when it changed) otherwise.

import { createInterface } from 'node:readline';
import type { DemoIO } from './lab.js';

export function consoleIO(out: NodeJS.WriteStream, input: NodeJS.ReadStream = process.stdin): DemoIO {
  const tty = out.isTTY === true;
  let live = false;
  let lastPrinted = '';
  let lastAt = 0;
  const endLive = () => {
    if (live) out.write('\n');
    live = false;
  };
  return {
    say(line) {
      endLive();
      out.write(`${line}\n`);
    },
    progress(line) {
      if (tty) {
        const width = Math.max(20, (out.columns || 120) - 1);
        out.write(`\r${line.slice(0, width).padEnd(width)}`);
        live = true;
        return;
      }
      const now = Date.now();
      const stateChanged = line.split(' ')[0] !== lastPrinted.split(' ')[0];
      if (line === lastPrinted || (!stateChanged && now - lastAt < 3_000)) return;
      lastPrinted = line;
      lastAt = now;
      out.write(`${line}\n`);
    },
    progressDone() {
      endLive();
      lastAt = 0;
    },
    waitForUser(prompt, signal) {
      endLive();
      out.write(`${prompt}\n`);
      if (!input.isTTY || signal.aborted) return Promise.resolve();
      return new Promise((resolve) => {
        const rl = createInterface({ input, terminal: false });
        const done = () => {
          signal.removeEventListener('abort', done);
          rl.close();
          resolve();
        };
        rl.once('line', done);
        rl.once('close', done);
        signal.addEventListener('abort', done);
      });
    },
  };
}
