// The one logger factory: pino JSON lines to stdout (journald picks them
// up) or to a file, with every field that can hold a secret redacted.
// Modules take a Logger from their caller; nothing logs at import time.

import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Object paths that may carry secrets, wherever they appear in a log record. */
export const REDACT_PATHS = [
  'token',
  'password',
  'sk',
  'ak',
  'secret',
  'securityToken',
  'security_token',
  'joinToken',
  'join_token',
  'authorization',
  'Authorization',
  '*.token',
  '*.password',
  '*.sk',
  '*.ak',
  '*.secret',
  '*.securityToken',
  '*.security_token',
  '*.joinToken',
  '*.join_token',
  '*.authorization',
  '*.Authorization',
  'headers["x-auth-token"]',
  'headers["X-Auth-Token"]',
  'headers["x-security-token"]',
  '*.headers["x-auth-token"]',
  '*.headers["X-Auth-Token"]',
  '*.headers.authorization',
];

export interface LoggerOptions {
  name: string;
  level?: string;
  /** A pino destination (file, stream). Default: stdout. */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
  /** Fields computed for every line (e.g. ids that change while the process runs). */
  mixin?: () => Record<string, unknown>;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? process.env.FERRY_LOG_LEVEL ?? 'info',
      base: { pid: process.pid, ...options.base },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      ...(options.mixin && { mixin: options.mixin }),
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
