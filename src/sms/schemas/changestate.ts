// PUT /v3/sources/{source_id}/changestate (section 4.1.6, table 4-52): the
// agent reports the source's replication state and migration stage. Both
// fields are optional; the response is a bare string (table 4-53).

import { z } from 'zod';
import { COPY_STATES, MIGRATION_CYCLES } from './common.js';

export const changeStateSchema = z.object({
  copystate: z.enum(COPY_STATES).optional(),
  migrationcycle: z.enum(MIGRATION_CYCLES).optional(),
});

export type ChangeState = z.infer<typeof changeStateSchema>;
