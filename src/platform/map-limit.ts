// Runs an async function over a list at most `limit` at a time, results in
// the list's order. Discovery probes devices four at a time with it; a
// whole-server migration copies its volumes with it; the receiver lays out
// (partition tables, file systems, mounts) with mapLimitSettled; both are
// one loop that differs in what a failure waits for. A
// concurrencyLimit caps calls started one by one from several places.

/**
 * Runs `fn` over items, at most `limit` at a time; the results keep the
 * items' order. The first failure rejects at once; no further item starts,
 * but items already started are not waited for.
 */
export function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  return runLimited(items, limit, fn, false);
}

/**
 * mapLimit for steps whose failure is followed by undoing what the others
 * use (unmounting, detaching a disk): nothing is left running behind a
 * failure. Once an item fails no further item starts, every item already
 * started is waited for, and then the error of the first failed item in the
 * list's order is thrown (the same error whatever finished first).
 */
export function mapLimitSettled<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  return runLimited(items, limit, fn, true);
}

/** The one loop behind both: `settle` says whether a failure waits for the items already started. */
async function runLimited<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>, settle: boolean): Promise<R[]> {
  const out: R[] = new Array(items.length);
  const failed: { index: number; error: unknown }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length && failed.length === 0) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (error) {
        failed.push({ index: i, error });
        if (!settle) throw error;
      }
    }
  };
  // A limit that is not a number (NaN from a caller's arithmetic) runs one at a time, as a limit below one does.
  const lanes = Number.isFinite(limit) ? Math.max(1, Math.floor(limit)) : 1;
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, worker));
  if (failed.length > 0) throw failed.reduce((a, b) => (b.index < a.index ? b : a)).error;
  return out;
}

/**
 * At most `limit` of the calls given to the returned function run at once;
 * the others wait their turn in the order they came (a finished call hands
 * its place straight to the next, so the cap holds however the waits settle).
 */
export function concurrencyLimit(limit: number): <R>(fn: () => Promise<R>) => Promise<R> {
  let active = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return async (fn) => {
    if (active < Math.max(1, limit)) active++;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await fn();
    } finally {
      release();
    }
  };
}
