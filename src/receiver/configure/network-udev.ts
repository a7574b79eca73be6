// udev persistent-net rules (/etc/udev/rules.d/70-persistent-net.rules and
// the like) for the target (pure): every rule that matches a NIC by its MAC
// (ATTR{address}==) is removed, since the target's NICs have other MACs and
// a rule naming eth0 by the source's MAC makes the new NIC eth1. Comments and
// other rules stay.
// Must not touch: anything but the text it is given.

export function removeMacRules(text: string, file: string): { text: string; changes: string[] } {
  const changes: string[] = [];
  const lines = text.split('\n');
  const kept = lines.filter((l, i) => {
    if (l.trim().startsWith('#') || !/ATTRS?\{address\}\s*==/.test(l)) return true;
    changes.push(`${file}:${i + 1}: rule bound to MAC ${/ATTRS?\{address\}\s*==\s*"([^"]*)"/.exec(l)?.[1] ?? '?'} removed`);
    return false;
  });
  return { text: kept.join('\n'), changes };
}
