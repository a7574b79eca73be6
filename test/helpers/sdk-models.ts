// Checking requests and replies against the official SDK's SMS v3 models
// (test/fixtures/sms-sdk-models.ts): a request body may use only fields
// the SDK's request model has (so it is a body the SDK could send), and a
// reply must carry every field of the SDK's response model with the
// model's type (null allowed: the document's examples send null for
// values not known), recursively through nested models and arrays.

import { SDK_MODELS, type SdkFieldType } from '../fixtures/sms-sdk-models.js';

const PRIMITIVES = new Set(['string', 'number', 'boolean', 'object']);

function elementType(t: string): string | undefined {
  return /^Array<(.+)>$/.exec(t)?.[1];
}

function model(name: string): Record<string, SdkFieldType> {
  const m = SDK_MODELS[name];
  if (!m) throw new Error(`no SDK model ${name} in the fixture`);
  return m;
}

/** The body as given, after checking that every key (recursively) is a field of SDK model `name`. */
export function sdkBody<T>(name: string, body: T): T {
  const bad = keysOutside(body, name, '');
  if (bad.length) throw new Error(`not a ${name} the SDK could send: ${bad.join(', ')}`);
  return body;
}

function keysOutside(value: unknown, name: string, path: string): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const fields = model(name);
  const out: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const t = fields[k];
    if (t === undefined) {
      out.push(`${path}${k}`);
      continue;
    }
    if (typeof t !== 'string') continue;
    const el = elementType(t);
    if (el && !PRIMITIVES.has(el) && Array.isArray(v)) v.forEach((item, i) => out.push(...keysOutside(item, el, `${path}${k}[${i}].`)));
    else if (!el && !PRIMITIVES.has(t)) out.push(...keysOutside(v, t, `${path}${k}.`));
  }
  return out;
}

export interface ReplyCheck {
  /** Per model: SDK fields the document's reply table does not list, which ferry need not send. */
  notDocumented?: Record<string, readonly string[]>;
  /** Per model: documented fields ferry sends only when they have a value (the reason goes beside the list). */
  onlyWhenSet?: Record<string, readonly string[]>;
  /** Paths (`a.b[].c`) whose element type ferry knowingly sends otherwise, with the reason. */
  typeExceptions?: Record<string, string>;
}

/** Every way `value` falls short of SDK response model `name`: missing fields and wrong types, by path. */
export function sdkReplyProblems(value: unknown, name: string, check: ReplyCheck = {}, path = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${path || '(reply)'}: not an object`];
  const obj = value as Record<string, unknown>;
  const out: string[] = [];
  const skip = new Set([...(check.notDocumented?.[name] ?? []), ...(check.onlyWhenSet?.[name] ?? [])]);
  for (const [k, t] of Object.entries(model(name))) {
    const where = `${path}${k}`;
    if (!(k in obj)) {
      if (!skip.has(k)) out.push(`${where}: missing (${name})`);
      continue;
    }
    out.push(...typeProblems(obj[k], t, where, check));
  }
  return out;
}

function typeProblems(v: unknown, t: SdkFieldType, where: string, check: ReplyCheck): string[] {
  if (v === null || v === undefined) return [];
  const generic = where.replace(/\[\d+\]/g, '[]');
  if (check.typeExceptions?.[generic]) return [];
  if (typeof t !== 'string') {
    const kind = typeof t.enum[0];
    return typeof v === kind ? [] : [`${where}: ${JSON.stringify(v)} is not a ${kind} (enum)`];
  }
  if (t === 'object') return typeof v === 'object' && !Array.isArray(v) ? [] : [`${where}: not an object`];
  if (PRIMITIVES.has(t)) return typeof v === t ? [] : [`${where}: ${JSON.stringify(v)} is not a ${t}`];
  const el = elementType(t);
  if (el) {
    if (!Array.isArray(v)) return [`${where}: not an array`];
    return v.flatMap((item, i) => (PRIMITIVES.has(el) ? typeProblems(item, el, `${where}[${i}]`, check) : sdkReplyProblems(item, el, check, `${where}[${i}].`)));
  }
  return sdkReplyProblems(v, t, check, `${where}.`);
}
