// Who may call the local control plane: AK/SK pairs and users (name,
// password, optional domain), from a JSON or YAML file that must be 0600,
// or a single pair from the command line. Secrets are compared in constant
// time and never logged.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FerryError } from '../errors/ferry-error.js';

export const credentialsFileSchema = z.strictObject({
  access_keys: z
    .array(z.strictObject({ ak: z.string().min(1).max(128), sk: z.string().min(8).max(256), name: z.string().max(64).optional() }))
    .default([]),
  users: z
    .array(z.strictObject({ name: z.string().min(1).max(64), password: z.string().min(8).max(256), domain: z.string().min(1).max(64).optional() }))
    .default([]),
});
export type CredentialsFile = z.infer<typeof credentialsFileSchema>;

export class Credentials {
  private readonly keys = new Map<string, { sk: string; name: string }>();
  private readonly users = new Map<string, { password: string; domain?: string }>();

  constructor(file: CredentialsFile) {
    for (const k of file.access_keys) this.keys.set(k.ak, { sk: k.sk, name: k.name ?? k.ak });
    for (const u of file.users) this.users.set(u.name, { password: u.password, domain: u.domain });
  }

  get empty(): boolean {
    return this.keys.size === 0 && this.users.size === 0;
  }

  secretFor(ak: string): { sk: string; name: string } | undefined {
    return this.keys.get(ak);
  }

  /** True when the user exists, the password matches and (if the user has one) the domain matches. */
  checkPassword(name: string, password: string, domain: string | undefined): boolean {
    const u = this.users.get(name);
    const want = sha(u?.password ?? 'no-such-user-placeholder');
    const ok = timingSafeEqual(want, sha(password)) && u !== undefined;
    if (!ok) return false;
    return u.domain === undefined || domain === undefined || u.domain === domain;
  }
}

function sha(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Reads a credentials file (JSON or YAML). Refuses one that group or others can read. */
export async function loadCredentialsFile(path: string): Promise<CredentialsFile> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new FerryError('FERRY_CREDENTIALS', `cannot read the credentials file ${path}: ${e.code ?? e.message}`);
  });
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw new FerryError(
      'FERRY_CREDENTIALS',
      `the credentials file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    );
  }
  const text = await readFile(path, 'utf8');
  let raw: unknown;
  try {
    raw = /^\s*[{[]/.test(text) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new FerryError('FERRY_CREDENTIALS', `the credentials file ${path} is neither valid JSON nor YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const parsed = credentialsFileSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new FerryError('FERRY_CREDENTIALS', `the credentials file ${path}: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  return parsed.data;
}
