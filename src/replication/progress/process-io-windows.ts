// Windows: Node exposes no per-process byte counters (resourceUsage() counts
// operations, not bytes), and polling WMI every few seconds costs more than
// the figure is worth, so the agent's disk I/O is left out of the report.

export function readProcessIoWindows(): Promise<number | null> {
  return Promise.resolve(null);
}
