// `ferry status`: what the agent is doing, read from its data directory
// (state.json) without talking to the agent or the control plane.

import type { AgentState } from './state-store.js';

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function formatStatus(state: AgentState | undefined, dataDir: string): string {
  if (!state) return `no agent state in ${dataDir}: the agent has not run here yet\n`;
  const lines: string[] = [];
  const a = state.agent;
  lines.push(`agent:     ${a ? `pid ${a.pid} ${alive(a.pid) ? 'running' : 'not running'}, version ${a.version}, started ${a.startedAt}` : 'unknown'}`);
  lines.push(`source:    ${state.sourceId ?? '(not registered)'}${state.sourceState ? `  state ${state.sourceState}` : ''}${state.migrationCycle ? ` / ${state.migrationCycle}` : ''}`);
  const t = state.task;
  if (!t) {
    lines.push('task:      none');
  } else {
    lines.push(`task:      ${t.id}${t.name ? ` (${t.name})` : ''}  ${t.type}  ${t.status}${t.syncing ? '  continuous sync' : ''}`);
    if (t.receiver) lines.push(`receiver:  ${t.receiver.host}:${t.receiver.port}`);
    const pass = t.pass ? `pass ${t.pass.number} (${t.pass.kind}) since ${t.pass.startedAt}` : `${t.passesDone} pass(es) done${t.lastPassAt ? `, last ${t.lastPassAt}` : ''}`;
    lines.push(`pass:      ${pass}${t.nextPassAt && t.status === 'waiting' ? `, next ${t.nextPassAt}` : ''}`);
    let total = 0;
    let done = 0;
    for (const [name, v] of Object.entries(t.volumes)) {
      total += v.totalBytes;
      done += v.doneBytes;
      const pct = v.totalBytes > 0 ? Math.floor((v.doneBytes / v.totalBytes) * 100) : 0;
      lines.push(`  ${name.padEnd(12)} ${v.kind.padEnd(5)} ${String(pct).padStart(3)}%  ${bytes(v.doneBytes)} / ${bytes(v.totalBytes)}${v.phase ? `  ${v.phase}` : ''}`);
    }
    if (total > 0) lines.push(`progress:  ${Math.floor((done / total) * 100)}%  ${bytes(done)} / ${bytes(total)}`);
    if (t.error) lines.push(`error:     ${t.error.code}: ${t.error.message}`);
  }
  if (state.lastCommand) lines.push(`last command: ${state.lastCommand.name} → ${state.lastCommand.result} (${state.lastCommand.at}): ${state.lastCommand.detail}`);
  lines.push(`updated:   ${state.updatedAt}`);
  return `${lines.join('\n')}\n`;
}
