// Commands (section 4.3): GET /v3/sources/{server_id}/command (4.3.1, tables
// 4-191/4-192) and POST /v3/sources/{server_id}/command_result (4.3.2, table
// 4-201).
//
// The command response is deliberately permissive: an empty body or {} means
// "no command", and an unknown or malformed command must reach the agent so it
// can answer `fail` (src/agent/commands.ts parseCommand does that). Only a
// body that is not an object (or a wrongly typed field) is rejected here.

import { z } from 'zod';
import { str } from './common.js';

/** Table 4-192. */
export const commandParamSchema = z.looseObject({
  task_id: z.string().nullish(),
  bucket: z.string().nullish(),
});

/** Table 4-191. */
export const commandResponseSchema = z.looseObject({
  command_name: z.string().nullish(),
  command_param: commandParamSchema.nullish(),
});
export type CommandResponse = z.infer<typeof commandResponseSchema>;

/** `command_name` values of table 4-201. */
export const COMMAND_RESULT_NAMES = ['START', 'STOP', 'DELETE', 'SYNC', 'UPLOAD_LOG', 'RSET_LOG_ACL'] as const;
export const COMMAND_RESULTS = ['success', 'fail'] as const;

/** Table 4-201. */
export const commandResultSchema = z.object({
  command_name: str(),
  result: z.enum(COMMAND_RESULTS),
  result_detail: z.record(z.string(), z.unknown()),
});
export type CommandResult = z.infer<typeof commandResultSchema>;
