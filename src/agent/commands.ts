// The commands the control plane hands the agent (SMS v3 section 4.3.1),
// parsed strictly: anything malformed or unknown becomes a ParsedCommand of
// kind 'invalid' with a detail the agent reports back as `fail`, so that a
// bad command never reaches the task machinery and never stops the daemon.

import { z } from 'zod';

export const COMMAND_NAMES = ['START', 'STOP', 'SYNC', 'DELETE', 'UPLOAD_LOG'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

const rawCommand = z.looseObject({
  command_name: z.string().max(255).optional(),
  command_param: z
    .looseObject({
      task_id: z.string().max(255).optional(),
      bucket: z.string().max(255).optional(),
    })
    .nullish(),
});

export type ParsedCommand =
  | { kind: 'none' }
  | { kind: 'command'; name: CommandName; taskId?: string }
  | { kind: 'invalid'; name: string; detail: string };

/** Turns a GET /v3/sources/{id}/command body into a command, 'none', or 'invalid'. */
export function parseCommand(body: unknown): ParsedCommand {
  if (body === null || body === undefined || body === '') return { kind: 'none' };
  const parsed = rawCommand.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { kind: 'invalid', name: '', detail: `malformed command: ${issue.path.join('.') || '(body)'}: ${issue.message}` };
  }
  const name = (parsed.data.command_name ?? '').trim();
  if (name === '') return { kind: 'none' };
  if (!(COMMAND_NAMES as readonly string[]).includes(name)) {
    return { kind: 'invalid', name, detail: `unknown command ${JSON.stringify(name.slice(0, 64))}; this agent understands ${COMMAND_NAMES.join(', ')}` };
  }
  const taskId = parsed.data.command_param?.task_id?.trim() || undefined;
  if ((name === 'START' || name === 'SYNC' || name === 'UPLOAD_LOG') && !taskId) {
    return { kind: 'invalid', name, detail: `${name} needs command_param.task_id, and the command carried none` };
  }
  return { kind: 'command', name: name as CommandName, taskId };
}
