// Time-of-day speed-limit rules (SMS v3 4.2.9/4.2.10, SpeedLimitJson):
// parsing, validation and segment selection by local time.
//
// start/end are `H:MM` or `HH:MM`; start is inclusive and end exclusive; an
// end of `23:59` means the end of the day; a segment whose end
// is before its start crosses midnight. speed is in Mbit/s, 0 = unlimited.
// Times no segment covers fall back to the task's speed_limit (0/absent =
// unlimited). Bad times, overlapping segments and out-of-range speeds are
// rejected as a whole with a FerryError (SMS.6405 for times, SMS.9001 for the
// rest); the caller keeps its previous schedule in force.

import { speedLimitResponseSchema, type SpeedLimitResponse } from '../../sms/schemas/speed-limit.js';
import { FerryError } from '../../errors/ferry-error.js';

export const DAY_MS = 24 * 60 * 60 * 1000;
const MINUTE_MS = 60_000;

/** The body of GET/POST /v3/tasks/{id}/speed-limit (and of `ferry migrate --schedule FILE`). */
export type SpeedLimitBody = SpeedLimitResponse;

/** The task-level settings a schedule falls back to (SMS task fields). */
export interface TaskSpeedDefaults {
  /** Task speed_limit in Mbit/s; 0 or absent = unlimited. */
  speedLimitMbps?: number | null;
  /** Task over_speed_threshold in %; absent = no over-speed protection in gaps. */
  overSpeedThresholdPct?: number | null;
}

export interface Segment {
  /** Index of the rule in the body, for messages. */
  index: number;
  startMs: number;
  /** Exclusive; may be <= startMs when the segment crosses midnight; DAY_MS = end of day. */
  endMs: number;
  /** Mbit/s, 0 = unlimited. */
  speedMbps: number;
  overSpeedThresholdPct: number | null;
  /** The rule as written, e.g. `08:00-18:00`. */
  label: string;
}

/** What applies at one instant. */
export interface ActiveLimit {
  /** Mbit/s; null = unlimited. */
  limitMbps: number | null;
  /** Over-speed threshold in %; null = protection off. */
  overSpeedThresholdPct: number | null;
  /** The segment in force, or null in a gap (task default applies). */
  segment: Segment | null;
  /** Milliseconds until what applies may change (next segment boundary), at most a day. */
  msUntilChange: number;
  /** A short description for logs and progress lines: `20 Mbit/s (08:00-18:00)`, `unlimited`. */
  describe: string;
}

const TIME_RE = /^(\d{1,2}):(\d{2})$/;

function parseTime(s: string, which: 'start' | 'end', index: number): number {
  const m = TIME_RE.exec(s.trim());
  const bad = () =>
    new FerryError('SMS.6405', `speed_limit[${index}].${which} ${JSON.stringify(s)} is not a time of day: use H:MM or HH:MM between 0:00 and 23:59`);
  if (!m) throw bad();
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (h > 23 || min > 59) throw bad();
  if (which === 'end' && h === 23 && min === 59) return DAY_MS;
  return (h * 60 + min) * MINUTE_MS;
}

function fmt(ms: number): string {
  const min = Math.round(ms / MINUTE_MS);
  return `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
}

/** The pieces of [0, DAY_MS) a segment covers (two when it crosses midnight). */
function pieces(s: Segment): [number, number][] {
  return s.startMs < s.endMs ? [[s.startMs, s.endMs]] : [[s.startMs, DAY_MS], [0, s.endMs]].filter(([a, b]) => b > a) as [number, number][];
}

function thresholdOf(v: number | null | undefined, where: string): number | null {
  if (v === null || v === undefined) return null;
  if (!Number.isFinite(v) || v < 0 || v > 100) {
    throw new FerryError('SMS.9001', `${where} over_speed_threshold ${v} is out of range: use a percentage from 0 to 100`);
  }
  return v;
}

/** A validated schedule; immutable. */
export class SpeedSchedule {
  readonly segments: readonly Segment[];
  readonly defaults: Required<{ [K in keyof TaskSpeedDefaults]: number | null }>;

  private constructor(segments: Segment[], defaults: TaskSpeedDefaults) {
    this.segments = segments;
    const dflt = defaults.speedLimitMbps ?? null;
    if (dflt !== null && (!Number.isFinite(dflt) || dflt < 0)) {
      throw new FerryError('SMS.9001', `task speed_limit ${dflt} is invalid: use Mbit/s >= 0 (0 = unlimited)`);
    }
    this.defaults = {
      speedLimitMbps: dflt,
      overSpeedThresholdPct: thresholdOf(defaults.overSpeedThresholdPct, 'task'),
    };
  }

  /** No segments: the task default (or unlimited) all day. */
  static flat(defaults: TaskSpeedDefaults = {}): SpeedSchedule {
    return new SpeedSchedule([], defaults);
  }

  /**
   * Validates a speed-limit body (already JSON-parsed). Throws a FerryError
   * naming the first bad rule; nothing is half-applied.
   */
  static parse(body: unknown, defaults: TaskSpeedDefaults = {}): SpeedSchedule {
    const parsed = speedLimitResponseSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const [, index, field] = issue.path;
      if (typeof index === 'number' && (field === 'start' || field === 'end')) {
        const value: unknown = (body as { speed_limit: Record<string, unknown>[] }).speed_limit[index]?.[field];
        if (typeof value === 'string') parseTime(value, field, index); // throws the SMS.6405 message
      }
      if (typeof index === 'number' && field === 'speed') {
        const value: unknown = (body as { speed_limit: Record<string, unknown>[] }).speed_limit[index]?.speed;
        if (typeof value === 'number') {
          throw new FerryError('SMS.9001', `speed_limit[${index}].speed ${value} is invalid: use a whole number of Mbit/s from 0 (unlimited) to 10000`);
        }
      }
      throw new FerryError('SMS.9001', `invalid speed-limit rules: ${issue.path.join('.') || '(body)'}: ${issue.message}`);
    }
    const segments = parsed.data.speed_limit.map((r, index): Segment => {
      const startMs = parseTime(r.start, 'start', index);
      const endMs = parseTime(r.end, 'end', index);
      if (startMs === endMs) {
        throw new FerryError('SMS.6405', `speed_limit[${index}] starts and ends at ${r.start}: a segment must cover some time`);
      }
      if (!Number.isInteger(r.speed) || r.speed < 0 || r.speed > 10_000) {
        throw new FerryError('SMS.9001', `speed_limit[${index}].speed ${r.speed} is invalid: use a whole number of Mbit/s from 0 (unlimited) to 10000`);
      }
      return {
        index,
        startMs,
        endMs,
        speedMbps: r.speed,
        overSpeedThresholdPct: thresholdOf(r.over_speed_threshold, `speed_limit[${index}]`),
        label: `${r.start.trim()}-${r.end.trim()}`,
      };
    });
    for (let i = 0; i < segments.length; i++) {
      for (let j = i + 1; j < segments.length; j++) {
        for (const [a0, a1] of pieces(segments[i]!)) {
          for (const [b0, b1] of pieces(segments[j]!)) {
            if (a0 < b1 && b0 < a1) {
              throw new FerryError(
                'SMS.9001',
                `speed_limit[${i}] (${segments[i]!.label}) and speed_limit[${j}] (${segments[j]!.label}) overlap at ${fmt(Math.max(a0, b0))}: segments must not overlap`,
              );
            }
          }
        }
      }
    }
    return new SpeedSchedule(segments, defaults);
  }

  /** Same segments, other task defaults. */
  withDefaults(defaults: TaskSpeedDefaults): SpeedSchedule {
    return new SpeedSchedule([...this.segments], defaults);
  }

  /** What applies at `msOfDay` milliseconds after local midnight. */
  at(msOfDay: number): ActiveLimit {
    const t = ((msOfDay % DAY_MS) + DAY_MS) % DAY_MS;
    let segment: Segment | null = null;
    let msUntilChange = DAY_MS;
    for (const s of this.segments) {
      for (const [a, b] of pieces(s)) {
        if (t >= a && t < b) segment = s;
      }
      // Boundaries are segment starts and ends (an end of DAY_MS is midnight).
      for (const edge of [s.startMs, s.endMs % DAY_MS]) {
        const d = (edge - t + DAY_MS) % DAY_MS;
        if (d > 0 && d < msUntilChange) msUntilChange = d;
      }
    }
    if (segment) {
      return {
        limitMbps: segment.speedMbps === 0 ? null : segment.speedMbps,
        overSpeedThresholdPct: segment.overSpeedThresholdPct ?? this.defaults.overSpeedThresholdPct,
        segment,
        msUntilChange,
        describe: `${segment.speedMbps === 0 ? 'unlimited' : `${segment.speedMbps} Mbit/s`} (${segment.label})`,
      };
    }
    const d = this.defaults.speedLimitMbps;
    return {
      limitMbps: d === null || d === 0 ? null : d,
      overSpeedThresholdPct: this.defaults.overSpeedThresholdPct,
      segment: null,
      msUntilChange,
      describe: `${d ? `${d} Mbit/s` : 'unlimited'}${this.segments.length > 0 ? ' (outside the segments)' : ''}`,
    };
  }
}

/** Bytes per second for a limit in Mbit/s (null = unlimited). */
export function mbpsToBytesPerSec(mbps: number | null): number | null {
  return mbps === null || mbps === 0 ? null : (mbps * 1_000_000) / 8;
}
