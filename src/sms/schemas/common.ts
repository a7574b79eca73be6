// Building blocks shared by every SMS v3 schema in this folder: the documented
// enums (source states, migration cycles, task states and types), the error
// body of section 3.3 / 5.1, and small constructors for the API's scalar types.
//
// Conventions of this folder:
// - Request schemas follow the tables (types, lengths, mandatory fields); they
//   are plain z.object, so unknown keys are accepted and dropped (a server must
//   tolerate newer agents; the sender's own output is typed from the schema).
// - Response schemas are z.looseObject: unknown fields are kept and tolerated.
//   Fields the documents show as null in their examples are `.nullish()`.
//   A missing or wrongly typed *required* field is an error naming the field
//   (see describeIssues).
// - Long is int64 in the API; JSON numbers beyond 2^53 cannot be represented
//   in JavaScript, so a Long here is a safe non-negative integer.

import { z } from 'zod';
// Source `state`, `migration_cycle` and OS types are defined once, with the
// registration body, in source.ts.
import { MIGRATION_CYCLES, OS_TYPES, SOURCE_STATES } from './source.js';

export { MIGRATION_CYCLES, OS_TYPES, SOURCE_STATES };

export { INT32_MAX, double, int, list, long, str } from './scalars.js';

/**
 * An identifier in a response. The documents' own examples sometimes send a
 * number where the table says String (e.g. enterprise_project_id: 0): accept
 * both, hand out a string.
 */
export const idLike = () => z.union([z.string(), z.number()]).transform((v) => String(v));

export type SourceState = (typeof SOURCE_STATES)[number];

/** `copystate` of PUT /v3/sources/{id}/changestate (table 4-52), upper case. */
export const COPY_STATES = [
  'UNAVAILABLE',
  'WAITING',
  'INIT',
  'REPLICATE',
  'SYNCING',
  'STOPPING',
  'STOPPED',
  'DELETING',
  'ERROR',
  'CLONING',
  'CUTOVERING',
  'FINISHED',
] as const;
export type CopyState = (typeof COPY_STATES)[number];

/** Maps a `copystate` to the `state` a source then shows in lists and details. */
export const COPY_STATE_TO_SOURCE_STATE: Record<CopyState, SourceState> = {
  UNAVAILABLE: 'unavailable',
  WAITING: 'waiting',
  INIT: 'initialize',
  REPLICATE: 'replicate',
  SYNCING: 'syncing',
  STOPPING: 'stopping',
  STOPPED: 'stopped',
  DELETING: 'deleting',
  ERROR: 'error',
  CLONING: 'cloning',
  CUTOVERING: 'cutovering',
  FINISHED: 'finished',
};

export type MigrationCycle = (typeof MIGRATION_CYCLES)[number];

/** Task `state` (table 4-109). */
export const TASK_STATES = [
  'READY',
  'RUNNING',
  'SYNCING',
  'MIGRATE_SUCCESS',
  'MIGRATE_FAIL',
  'ABORTING',
  'ABORT',
  'DELETING',
  'SYNC_F_ROLLBACKING',
  'SYNC_F_ROLLBACK_SUCCESS',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** Task `type` (table 4-97). */
export const TASK_TYPES = ['MIGRATE_FILE', 'MIGRATE_BLOCK'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

export type OsType = (typeof OS_TYPES)[number];

/** Task `log_collect_status` (table 4-112). */
export const LOG_COLLECT_STATUSES = [
  'INIT',
  'TELL_AGENT_TO_COLLECT',
  'WAIT_AGENT_COLLECT_ACK',
  'AGENT_COLLECT_FAIL',
  'AGENT_COLLECT_SUCCESS',
  'WAIT_SERVER_COLLECT',
  'SERVER_COLLECT_FAIL',
  'SERVER_COLLECT_SUCCESS',
  'TELL_AGENT_RESET_ACL',
  'WAIT_AGENT_RESET_ACL_ACK',
] as const;

/** One entry of `details` in an error body (table 4-33). */
export const errorDetailSchema = z.looseObject({
  error_code: z.string().nullish(),
  error_msg: z.string().nullish(),
});

/**
 * The error body (sections 3.3 and 5.1; tables 4-32 and 4-34). Every field is
 * optional: gateways in front of SMS answer with shorter bodies, and a client
 * must still turn them into a typed error.
 */
export const errorBodySchema = z.looseObject({
  error_code: z.string().nullish(),
  error_msg: z.string().nullish(),
  encoded_authorization_message: z.string().nullish(),
  error_param: z.array(z.string()).nullish(),
  details: z.array(errorDetailSchema).nullish(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;
export type ErrorDetail = z.infer<typeof errorDetailSchema>;

/**
 * Several endpoints answer 200 with a bare string or an empty body (tables
 * 4-47, 4-53, 4-58 …: "- String"). Anything is accepted and ignored.
 */
export const emptyResponseSchema = z.unknown();

/** Turns zod issues into one line that names every offending field. */
export function describeIssues(error: z.ZodError, max = 5): string {
  const parts = error.issues.slice(0, max).map((issue) => {
    const where = issue.path.length > 0 ? issue.path.map(String).join('.') : '(body)';
    return `${where}: ${issue.message}`;
  });
  const more = error.issues.length > max ? ` (and ${error.issues.length - max} more)` : '';
  return parts.join('; ') + more;
}
