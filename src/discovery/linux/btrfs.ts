// Text outputs of btrfs-progs (it has no JSON output in the versions that
// distributions ship): `filesystem show --raw`, `filesystem df -b`,
// `subvolume list -p -u -q`, `subvolume get-default`,
// `inspect-internal dump-super`.

export interface BtrfsShow {
  label: string;
  uuid: string;
  devices: { devid: number; sizeBytes: number; path: string }[];
}

export function parseFilesystemShow(text: string): BtrfsShow[] {
  const out: BtrfsShow[] = [];
  let cur: BtrfsShow | undefined;
  for (const line of text.split('\n')) {
    const head = /^Label:\s+(?:'(.*)'|none)\s+uuid:\s+([0-9a-fA-F-]+)/.exec(line);
    if (head) {
      cur = { label: head[1] ?? '', uuid: head[2]!, devices: [] };
      out.push(cur);
      continue;
    }
    const dev = /^\s+devid\s+(\d+)\s+size\s+(\d+)\S*\s+used\s+\S+\s+path\s+(\S+)/.exec(line);
    if (dev && cur) cur.devices.push({ devid: Number(dev[1]), sizeBytes: Number(dev[2]), path: dev[3]! });
  }
  return out;
}

export interface BtrfsDf {
  data: string;
  metadata: string;
  system: string;
  globalReserve: string;
}

export function parseFilesystemDf(text: string): BtrfsDf {
  const out: BtrfsDf = { data: '', metadata: '', system: '', globalReserve: '' };
  for (const line of text.split('\n')) {
    const m = /^(Data|Metadata|System|GlobalReserve),\s*([^:]+):/.exec(line.trim());
    if (!m) continue;
    const profile = m[2]!.trim();
    if (m[1] === 'Data') out.data = profile;
    else if (m[1] === 'Metadata') out.metadata = profile;
    else if (m[1] === 'System') out.system = profile;
    else out.globalReserve = profile;
  }
  return out;
}

export interface BtrfsListedSubvolume {
  id: string;
  parentId: string;
  topLevel: string;
  parentUuid: string;
  uuid: string;
  path: string;
}

/** `btrfs subvolume list -p -u -q <mnt>` */
export function parseSubvolumeList(text: string): BtrfsListedSubvolume[] {
  const out: BtrfsListedSubvolume[] = [];
  for (const line of text.split('\n')) {
    const id = /^ID (\d+) /.exec(line);
    const path = / path (.*)$/.exec(line);
    if (!id || !path) continue;
    const field = (k: string) => new RegExp(` ${k} (\\S+)`).exec(line)?.[1] ?? '';
    out.push({
      id: id[1]!,
      parentId: field('parent'),
      topLevel: field('top level'),
      parentUuid: field('parent_uuid'),
      uuid: /\suuid (\S+)/.exec(line)?.[1] ?? '',
      path: path[1]!.replace(/^<FS_TREE>\//, ''),
    });
  }
  return out;
}

/** `btrfs subvolume get-default <mnt>`: "ID 5 (FS_TREE)" or "ID 256 gen 7 top level 5 path sub1". */
export function parseGetDefault(text: string): { id: string; name: string } {
  const id = /ID (\d+)/.exec(text)?.[1] ?? '';
  const path = / path (.*)$/m.exec(text)?.[1]?.trim();
  return { id, name: path ?? (/\(FS_TREE\)/.test(text) ? 'FS_TREE' : '') };
}

export interface BtrfsSuper {
  fsid: string;
  label: string;
  totalBytes: number;
  bytesUsed: number;
  sectorSize: number;
  nodeSize: number;
  numDevices: number;
}

export function parseDumpSuper(text: string): BtrfsSuper {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_.]+)\s+(.*)$/.exec(line);
    if (m && !kv.has(m[1]!)) kv.set(m[1]!, m[2]!.trim());
  }
  const num = (k: string) => Number(kv.get(k) ?? 0) || 0;
  return {
    fsid: kv.get('fsid') ?? '',
    label: kv.get('label') ?? '',
    totalBytes: num('total_bytes'),
    bytesUsed: num('bytes_used'),
    sectorSize: num('sectorsize'),
    nodeSize: num('nodesize'),
    numDevices: num('num_devices'),
  };
}
