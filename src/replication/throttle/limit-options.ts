// The direct harness's throttle options: `--limit 50M` (a flat limit in
// bits per second with K/M/G decimal suffixes) and `--schedule FILE` (a file
// holding the body of POST /v3/tasks/{id}/speed-limit).

import { readFile } from 'node:fs/promises';
import { errorMessage, FerryError, UsageError } from '../../errors/ferry-error.js';
import { SpeedSchedule } from './speed-schedule.js';

const LIMIT_RE = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:bit\/s|bps|bit|b)?$/i;
const MULT: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9 };

/**
 * `50M` → 50 000 000 bits per second. Suffixes K, M, G are decimal (network
 * units); `bit`, `bit/s` or `bps` may follow. 0 means unlimited (returns null).
 */
export function parseBitRate(text: string): number | null {
  const m = LIMIT_RE.exec(text.trim());
  if (!m) throw new UsageError(`--limit ${JSON.stringify(text)} is not a rate: use bits per second with an optional K/M/G suffix, e.g. 50M or 1.5G`);
  const bps = Number(m[1]) * MULT[m[2]!.toLowerCase()]!;
  if (!Number.isFinite(bps)) throw new UsageError(`--limit ${JSON.stringify(text)} is too large`);
  return bps === 0 ? null : bps;
}

/** A flat schedule from `--limit` (Mbit/s in the schedule's unit). */
export function scheduleFromLimit(text: string): SpeedSchedule {
  const bps = parseBitRate(text);
  return SpeedSchedule.flat({ speedLimitMbps: bps === null ? 0 : bps / 1e6 });
}

/** Reads and validates a `--schedule FILE`; a bad file is a usage error naming the file. */
export async function loadScheduleFile(path: string, fallbackMbps?: number | null): Promise<SpeedSchedule> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--schedule ${path}: cannot read the file: ${errorMessage(err)}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--schedule ${path}: not JSON (expected the body of POST /v3/tasks/{id}/speed-limit): ${errorMessage(err)}`);
  }
  try {
    return SpeedSchedule.parse(body, { speedLimitMbps: fallbackMbps ?? null });
  } catch (err) {
    const code = err instanceof FerryError ? ` [${err.code}]` : '';
    throw new UsageError(`--schedule ${path}: ${errorMessage(err)}${code}`);
  }
}
