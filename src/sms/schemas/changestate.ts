// PUT /v3/sources/{source_id}/changestate (section 4.1.6, table 4-52): the
// agent reports the source's replication state and migration stage. Both
// fields are optional; the response is a bare string (table 4-53).
//
// Spelling: the document prints `copystate` in upper case (WAITING,
// REPLICATE …), the official SDK's enum (PutCopyStateReq) sends the same
// values in lower case (waiting, replicate …). Both are accepted, in any
// case, and parse to one canonical form: `copystate` upper case (as the
// document), `migrationcycle` lower case (as both spell it).

import { z } from 'zod';
import { COPY_STATES, MIGRATION_CYCLES } from './common.js';

const upper = (v: unknown) => (typeof v === 'string' ? v.toUpperCase() : v);
const lower = (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v);

export const changeStateSchema = z.object({
  copystate: z.preprocess(upper, z.enum(COPY_STATES)).optional(),
  migrationcycle: z.preprocess(lower, z.enum(MIGRATION_CYCLES)).optional(),
});

export type ChangeState = z.infer<typeof changeStateSchema>;
