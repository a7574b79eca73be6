// GET /v3/tasks/{task_id}/certkey[?enable_ca_cert=true] — the SDK's
// showCertKey (ShowCertKeyRequest / ShowCertKeyResponse): the TLS material
// of the task's migration channel, in PEM: `cert` and `private_key` issued
// to the task's source, and with enable_ca_cert the `ca` that issued them
// (real SMS also sends target_* certificates; they are optional here).
//
// ferry extension, documented in docs/local-control-plane.md: `receiver`,
// how to reach the task's receiver (host, port, sha256 fingerprint of its
// certificate, join token), present when the task was created with one. A
// control plane without it (real SMS) leaves the agent to its config's
// `receiver:` section and the task's migration_ip.
// private_key and join_token are secrets: never log them.

import { z } from 'zod';

/** ferry extension: the task's receiver. */
export const certKeyReceiverSchema = z.looseObject({
  host: z.string().max(255).nullish(),
  port: z.int().min(1).max(65_535),
  fingerprint: z.string().min(1).max(255),
  join_token: z.string().min(1).max(1024),
});

export const certKeyResponseSchema = z.looseObject({
  cert: z.string().nullish(),
  private_key: z.string().nullish(),
  ca: z.string().nullish(),
  target_mgmt_cert: z.string().nullish(),
  target_mgmt_private_key: z.string().nullish(),
  target_data_cert: z.string().nullish(),
  target_data_private_key: z.string().nullish(),
  receiver: certKeyReceiverSchema.nullish(),
});
export type CertKeyResponse = z.infer<typeof certKeyResponseSchema>;
