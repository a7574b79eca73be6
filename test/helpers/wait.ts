// Waiting for a condition in tests: poll until `fn` returns a truthy value,
// with a deadline that only bounds a hang (never a speed assertion). On
// timeout the error names what was awaited and, when given, the tail of
// `context()` (a child's log, say).

export async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 60_000,
  context?: () => string,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${context ? `\n${context().slice(-3000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
