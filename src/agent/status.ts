// `ferry status`: what the agent is doing, read from its data directory
// (state.json) without talking to the agent or the control plane.

import { formatBytes } from '../platform/human-units.js';
import { pidAlive } from '../platform/pid-alive.js';
import type { AgentState } from './state-store.js';

export function formatStatus(state: AgentState | undefined, dataDir: string): string {
  if (!state) return `no agent state in ${dataDir}: the agent has not run here yet\n`;
  const lines: string[] = [];
  const a = state.agent;
  lines.push(`agent:     ${a ? `pid ${a.pid} ${pidAlive(a.pid) ? 'running' : 'not running'}, version ${a.version}, started ${a.startedAt}` : 'unknown'}`);
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
      lines.push(`  ${name.padEnd(12)} ${v.kind.padEnd(5)} ${String(pct).padStart(3)}%  ${formatBytes(v.doneBytes)} / ${formatBytes(v.totalBytes)}${v.phase ? `  ${v.phase}` : ''}`);
    }
    if (total > 0) lines.push(`progress:  ${Math.floor((done / total) * 100)}%  ${formatBytes(done)} / ${formatBytes(total)}`);
    if (t.error) lines.push(`error:     ${t.error.code}: ${t.error.message}`);
  }
  if (state.lastCommand) lines.push(`last command: ${state.lastCommand.name} → ${state.lastCommand.result} (${state.lastCommand.at}): ${state.lastCommand.detail}`);
  lines.push(`updated:   ${state.updatedAt}`);
  return `${lines.join('\n')}\n`;
}
