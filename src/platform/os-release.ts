// os-release(5): KEY=VALUE lines, values optionally in single or double
// quotes, backslash escapes inside. One parser for discovery (the source's
// OS) and configure (the migrated system's OS). Pure; reads nothing.

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]!] = v.replace(/\\(.)/g, '$1');
  }
  return out;
}
