// A Logger that loads its real logger (pino, through log.ts) only when the
// first record at or above its level is logged; until then nothing of pino
// is imported. Owns only that deferral: the real logger's format, redaction
// and destination stay log.ts's and the caller's `load`.
//
// Why (issue 14, measured Dec 6 on the 2-core VM): `ferry migrate` loaded
// pino and built its logger before every pass — import('pino') plus
// createLogger took 47–87 ms of a delta pass that takes about 1.1 s with
// nothing changed — while at its default level (warn) a pass that goes well
// logs nothing. Records logged before the real logger is loaded wait in
// order and are written, with their child bindings, as soon as it is (their
// `time` is then the moment they are written, a few milliseconds late).
// Only what ferry's code calls on a Logger is here: the six level methods,
// child, level, isLevelEnabled and flush. Should the process exit before
// the real logger is there (a crash right after a warning), the records
// still waiting are written to stderr at exit as short JSON lines: level,
// time, message and the error's text, no other field (the real logger's
// redaction is not loaded then, so nothing else is trusted to be safe).

import { writeSync } from 'node:fs';
import type { Logger } from './log.js';

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
type Method = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const METHODS: Method[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/**
 * A logger at `level` whose records go to the logger `load` makes, made at
 * the first record that passes the level. `load` failing is written to
 * stderr once (the records are then lost, as a broken destination would).
 */
export function deferredLogger(level: string, load: () => Promise<Logger>): Logger {
  const threshold = LEVELS[level];
  // pino's own message for an unknown level, so that a wrong FERRY_LOG_LEVEL fails as it did.
  if (threshold === undefined) throw new Error(`default level:${level} must be included in custom levels`);
  let real: Logger | undefined;
  let loading: Promise<void> | undefined;
  let failed = false;
  const waiting: { write: (l: Logger) => void; level: number; args: unknown[] }[] = [];
  // At exit, whatever still waits is written plainly (see the top of this file).
  const atExit = () => {
    for (const w of waiting.splice(0)) {
      const [first, second] = w.args;
      const msg = typeof first === 'string' ? first : typeof second === 'string' ? second : '';
      const err = first && typeof first === 'object' ? (first as { err?: unknown }).err : undefined;
      const line: Record<string, unknown> = { level: w.level, time: new Date().toISOString(), pid: process.pid, msg };
      if (err !== undefined) line.err = err instanceof Error ? err.message : String(err);
      try {
        writeSync(2, `${JSON.stringify(line)}\n`);
      } catch {
        /* stderr is gone */
      }
    }
  };
  const startLoading = () => {
    if (loading) return;
    process.once('exit', atExit);
    loading = load().then(
      (l) => {
        real = l;
        process.off('exit', atExit);
        for (const w of waiting.splice(0)) w.write(l);
      },
      (e: unknown) => {
        // Later records are dropped, not kept for a logger that will never come.
        failed = true;
        waiting.length = 0;
        process.off('exit', atExit);
        process.stderr.write(`ferry: the logger could not start: ${e instanceof Error ? e.message : String(e)}\n`);
      },
    );
  };
  const make = (chain: readonly (readonly [Record<string, unknown>, unknown])[]): Logger => {
    let bound: Logger | undefined;
    // The real logger's child for this chain of bindings, made once.
    const target = (l: Logger): Logger =>
      (bound ??= chain.reduce<Logger>((x, [b, opts]) => (x.child as unknown as (b: object, o?: unknown) => Logger).call(x, b, opts), l));
    const logger: Record<string, unknown> = {
      level,
      isLevelEnabled: (name: string) => LEVELS[name] !== undefined && LEVELS[name] !== Infinity && LEVELS[name] >= threshold,
      child: (bindings: Record<string, unknown>, options?: unknown) => make([...chain, [bindings, options]]),
      flush: (cb?: (err?: Error) => void) => {
        if (real) target(real).flush(cb);
        else cb?.();
      },
    };
    for (const name of METHODS) {
      const value = LEVELS[name]!;
      logger[name] = (...args: unknown[]) => {
        if (value < threshold) return;
        const write = (l: Logger) => {
          const t = target(l);
          (t[name] as (...a: unknown[]) => void).apply(t, args);
        };
        if (real) write(real);
        else if (!failed) {
          waiting.push({ write, level: value, args });
          startLoading();
        }
      };
    }
    return logger as unknown as Logger;
  };
  return make([]);
}
