// Host and agent resource figures for the progress body: CPU % (0–100 of
// the whole machine), memory in MB (MiB) and disk I/O in MB/s. Host figures
// come from systeminformation, the agent's from process.cpuUsage(),
// process.memoryUsage() and the platform's per-process I/O counters. A
// figure that cannot be read is null (and left out of the report), never a
// guess. sample() is async and slow-ish (tens of ms); the reporter calls it
// on its own timer and reports the latest result.

import os from 'node:os';
import si from 'systeminformation';
import { readProcessIo } from './process-io.js';

export interface SystemStats {
  totalCpuPct: number | null;
  agentCpuPct: number | null;
  totalMemMB: number | null;
  agentMemMB: number | null;
  totalDiskIoMBps: number | null;
  agentDiskIoMBps: number | null;
}

const MiB = 1024 * 1024;

export class SystemSampler {
  private lastCpu = process.cpuUsage();
  private lastT = performance.now();
  private lastIo: number | null = null;
  latest: SystemStats | null = null;

  /** Takes a sample; the first one primes the counters (rates are null until the second). */
  async sample(): Promise<SystemStats> {
    const [load, mem, fs, io] = await Promise.all([
      si.currentLoad().catch(() => null),
      si.mem().catch(() => null),
      si.fsStats().catch(() => null),
      readProcessIo().catch(() => null),
    ]);
    const t = performance.now();
    const dtSec = (t - this.lastT) / 1000;
    const cpu = process.cpuUsage(this.lastCpu);
    this.lastCpu = process.cpuUsage();
    this.lastT = t;
    const cores = Math.max(1, os.availableParallelism());
    const agentCpuPct = dtSec > 0.05 ? ((cpu.user + cpu.system) / 1e6 / dtSec / cores) * 100 : null;
    let agentDiskIoMBps: number | null = null;
    if (io !== null) {
      if (this.lastIo !== null && dtSec > 0.05) agentDiskIoMBps = Math.max(0, io - this.lastIo) / MiB / dtSec;
      this.lastIo = io;
    }
    const fsRate = fs && typeof fs.rx_sec === 'number' && typeof fs.wx_sec === 'number' && fs.rx_sec >= 0 && fs.wx_sec >= 0 ? (fs.rx_sec + fs.wx_sec) / MiB : null;
    this.latest = {
      totalCpuPct: load && Number.isFinite(load.currentLoad) ? load.currentLoad : null,
      agentCpuPct,
      totalMemMB: mem ? mem.active / MiB : null,
      agentMemMB: process.memoryUsage().rss / MiB,
      totalDiskIoMBps: fsRate,
      agentDiskIoMBps,
    };
    return this.latest;
  }
}
