// GET /v3/tasks/{task_id}/certkey — in SMS the agent fetches the TLS material
// of its migration channel here. In ferry (an extension of the document), it
// returns how to reach the task's receiver: host, port, the sha256 fingerprint
// of the receiver's certificate, and the join token the receiver accepts. Only
// the task's own source may read it. The join token is a secret: never log it.

import { z } from 'zod';

export const certKeyResponseSchema = z.looseObject({
  receiver: z.looseObject({
    host: z.string().max(255).nullish(),
    port: z.int().min(1).max(65_535),
    fingerprint: z.string().min(1).max(255),
    join_token: z.string().min(1).max(1024),
  }),
});
export type CertKeyResponse = z.infer<typeof certKeyResponseSchema>;
