// Time-segment rate limits of a task: GET (section 4.2.9, tables 4-178/4-179)
// and POST (4.2.10, tables 4-184/4-185) /v3/tasks/{task_id}/speed-limit.
// Segment times are "H:MM" or "HH:MM" (the examples use both "0:00" and
// "00:00"); speed is Mbit/s.

import { z } from 'zod';
import { double, int, list } from './common.js';

const HHMM = /^([01]?\d|2[0-3]):[0-5]\d$/;
const time = () => z.string().max(255).regex(HHMM, 'must be a time of day H:MM or HH:MM (00:00 to 23:59)');

/** Table 4-185: one segment as a request carries it. */
export const speedLimitSegmentSchema = z.object({
  start: time(),
  end: time(),
  speed: int(10_000),
  over_speed_threshold: double(100).optional(),
});

/** Table 4-184. */
export const speedLimitSetSchema = z.object({
  speed_limit: list(speedLimitSegmentSchema),
});

/** Table 4-179: a segment as a response carries it (loose; threshold may be null). */
export const speedLimitSegmentViewSchema = z.looseObject({
  start: time(),
  end: time(),
  speed: z.number().min(0),
  over_speed_threshold: z.number().nullish(),
});

/** Table 4-178. */
export const speedLimitResponseSchema = z.looseObject({
  speed_limit: z.array(speedLimitSegmentViewSchema),
});

export type SpeedLimitSegment = z.infer<typeof speedLimitSegmentSchema>;
export type SpeedLimitSet = z.infer<typeof speedLimitSetSchema>;
export type SpeedLimitResponse = z.infer<typeof speedLimitResponseSchema>;
