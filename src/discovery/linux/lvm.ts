// LVM's JSON reports (`pvs|vgs|lvs --reportformat json --units b`), parsed
// with zod: sizes arrive as strings such as "20971520B".

import { z } from 'zod';

const report = <T extends z.ZodType>(key: string, row: T) =>
  z.object({ report: z.array(z.object({ [key]: z.array(row).optional() })) });

const bytes = z.string().transform((s, ctx) => {
  const m = /^\s*(\d+)(?:\.0+)?B?\s*$/.exec(s);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `not a byte count: ${JSON.stringify(s)}` });
    return z.NEVER;
  }
  return Number(m[1]);
});

const pvRow = z.object({ pv_name: z.string(), vg_name: z.string().default(''), pv_size: bytes, pv_free: bytes.optional(), pv_uuid: z.string().optional() });
const vgRow = z.object({ vg_name: z.string(), vg_size: bytes, vg_free: bytes, vg_uuid: z.string().optional(), vg_extent_size: bytes.optional() });
const lvRow = z.object({
  lv_name: z.string(),
  vg_name: z.string(),
  lv_size: bytes,
  lv_path: z.string().default(''),
  lv_dm_path: z.string().default(''),
  lv_active: z.string().default(''),
});

export type PvRow = z.output<typeof pvRow>;
export type VgRow = z.output<typeof vgRow>;
export type LvRow = z.output<typeof lvRow>;

function rows<T extends z.ZodType>(key: string, row: T, text: string): z.output<T>[] {
  const parsed = report(key, row).parse(JSON.parse(text));
  return parsed.report.flatMap((r) => (r[key] as z.output<T>[] | undefined) ?? []);
}

export const parsePvs = (text: string): PvRow[] => rows('pv', pvRow, text);
export const parseVgs = (text: string): VgRow[] => rows('vg', vgRow, text);
export const parseLvs = (text: string): LvRow[] => rows('lv', lvRow, text);

/** The /dev/mapper name of an LV: dashes inside names are doubled. */
export function mapperName(vg: string, lv: string): string {
  return `/dev/mapper/${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

const segRow = z.object({
  lv_name: z.string(),
  vg_name: z.string(),
  lv_dm_path: z.string().default(''),
  seg_start_pe: z.string(),
  seg_pe_ranges: z.string().default(''),
  segtype: z.string().default(''),
  seg_size: bytes,
});
const peStartRow = z.object({ pv_name: z.string(), pe_start: bytes });
const extentRow = z.object({ vg_name: z.string(), vg_extent_size: bytes });

export interface LvLocation {
  /** The PV holding the LV's first extent. */
  pv: string;
  /** Byte offset of that extent on the PV. */
  offset: number;
  /** Bytes of the first segment. */
  size: number;
}

/**
 * Where the first extent of each linear LV sits on its PV, from
 * `lvs --segments` (seg_pe_ranges "/dev/sdb1:0-11"), `pvs -o pe_start` and
 * `vgs -o vg_extent_size`: lets discovery probe the file system of an LV
 * that is not active (no device-mapper node to open).
 */
export function lvFirstExtents(segmentsJson: string, pvsJson: string, vgsJson: string): Map<string, LvLocation> {
  // `lvs --segments` reports rows under "seg"; without --segments, segment fields come under "lv".
  const segs = [...rows('seg', segRow, segmentsJson), ...rows('lv', segRow, segmentsJson)];
  const peStart = new Map(rows('pv', peStartRow, pvsJson).map((p) => [p.pv_name, p.pe_start]));
  const extent = new Map(rows('vg', extentRow, vgsJson).map((v) => [v.vg_name, v.vg_extent_size]));
  const out = new Map<string, LvLocation>();
  for (const s of segs) {
    if (s.seg_start_pe !== '0' || (s.segtype !== 'linear' && s.segtype !== 'striped')) continue;
    const m = /^(.+):(\d+)-(\d+)$/.exec(s.seg_pe_ranges.trim());
    const ext = extent.get(s.vg_name);
    const start = m ? peStart.get(m[1]!) : undefined;
    if (!m || ext === undefined || start === undefined) continue; // striped over several PVs: ranges are space-separated
    const name = s.lv_dm_path || mapperName(s.vg_name, s.lv_name);
    out.set(name, { pv: m[1]!, offset: start + Number(m[2]) * ext, size: s.seg_size });
  }
  return out;
}
