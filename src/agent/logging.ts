// The agent's logging: pino JSON lines to stdout (journald) and, when the
// config asks, to a size-rotated file; the most recent lines are also kept in
// memory so UPLOAD_LOG works without a log file. On top of pino's path
// redaction every line is scrubbed of the known secret values (config
// secrets, receiver tokens learned at run time), so a secret that slips into
// a free-text message still never reaches a log.

import { createLogger, type Logger } from '../platform/log.js';
import { RotatingFile } from '../platform/rotating-file.js';

export interface AgentLoggingOptions {
  level: string;
  file?: string;
  maxSizeMb?: number;
  maxFiles?: number;
  secrets?: string[];
  /** Lines kept in memory for UPLOAD_LOG. */
  recentLines?: number;
}

export class AgentLogging {
  readonly log: Logger;
  private readonly secrets = new Set<string>();
  private readonly recent: string[] = [];
  private readonly recentMax: number;
  private readonly file?: RotatingFile;

  constructor(options: AgentLoggingOptions) {
    for (const s of options.secrets ?? []) this.addSecret(s);
    this.recentMax = options.recentLines ?? 5000;
    if (options.file) {
      this.file = new RotatingFile(options.file, {
        maxBytes: (options.maxSizeMb ?? 20) * 1024 * 1024,
        maxFiles: options.maxFiles ?? 5,
      });
    }
    this.log = createLogger({
      name: 'ferry-agent',
      level: options.level,
      destination: { write: (line: string) => this.write(line) },
      mixin: () => (this.sourceId ? { sourceId: this.sourceId } : {}),
    });
  }

  /** The source id every line carries (undefined: none yet, or forgotten). */
  sourceId: string | undefined;

  /** Registers a value that must never appear in a log line (at least 4 characters). */
  addSecret(value: string | undefined): void {
    if (value && value.length >= 4) this.secrets.add(value);
  }

  scrub(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join('[redacted]');
    return out;
  }

  private write(line: string): void {
    const clean = this.scrub(line);
    process.stdout.write(clean);
    this.recent.push(clean);
    if (this.recent.length > this.recentMax) this.recent.splice(0, this.recent.length - this.recentMax);
    try {
      this.file?.write(clean);
    } catch {
      // a full or vanished log disk must not stop the agent; stdout still has the line
    }
  }

  /** Recent log lines held in memory (newest last). */
  recentLines(): string[] {
    return [...this.recent];
  }

  /** Paths of the log file and its rotations (some may not exist). */
  logFiles(): string[] {
    return this.file?.files() ?? [];
  }

  close(): void {
    this.file?.close();
  }
}
