// The SMS v3 API shapes ferry speaks, as zod schemas with inferred types: the
// single definition used by the control-plane client (src/sms-client), the
// local control plane (src/sms-server) and the operator CLI. See common.ts for
// the conventions (loose responses, strict requests, errors naming fields).
// This folder only describes shapes; it performs no I/O.

export * from './common.js';
export * from './source.js';
export * from './source-update.js';
export * from './source-read.js';
export * from './changestate.js';
export * from './diskinfo.js';
export * from './task.js';
export * from './progress.js';
export * from './speed-limit.js';
export * from './command.js';
export * from './auth-token.js';
export * from './certkey.js';
