// A resident agent for the block benchmark: one process that runs passes on
// request, as the agent daemon does for SYNC commands. It calls
// replication/run-pass.ts's runPass, the function the daemon's replication
// port calls, in a process that has loaded ferry and run passes before, so a
// pass pays no process start-up, module loading or JIT warm-up: what an
// operator's installed agent pays for each pass after the first. (`ferry
// migrate` one-shot passes are measured too; the bench prints both.)
//
// Usage: node resident-agent.mjs DIST. Each JSON line on stdin
// ({"source", "target", "receiver": {host, port, token, fingerprint}}, and
// for a file tree "kind": "file" and "stateDir", where its manifests are kept
// between passes) runs one pass; each answer is one JSON line on stdout:
// {"wallMs", "cpuS", "summary"} (cpuS: the whole process, every thread, during
// the pass), or {"error"}. "ready" is printed once ferry is loaded.

import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';

const dist = resolve(process.argv[2] ?? 'dist');
const { runPass } = await import(join(dist, 'replication/run-pass.js'));
const { createLogger } = await import(join(dist, 'platform/log.js'));
const { default: pino } = await import('pino');
const log = createLogger({ name: 'ferry-bench-resident', level: process.env.FERRY_LOG_LEVEL ?? 'warn', destination: pino.destination({ dest: 2, sync: false }) });

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

console.log('ready');
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  try {
    const req = JSON.parse(line);
    const volume = { kind: req.kind ?? 'block', source: req.source, target: req.target };
    const c0 = cpu();
    const t0 = process.hrtime.bigint();
    // As the daemon's replication port calls it (agent/replication-port.ts), with the bench's state directory.
    const summary = await runPass(volume, { receiver: req.receiver, log }, { stateDir: req.stateDir ?? '/nonexistent' });
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(JSON.stringify({ wallMs, cpuS: cpu() - c0, summary }));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e?.stack ?? e) }));
  }
}
