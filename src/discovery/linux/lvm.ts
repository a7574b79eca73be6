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

const pvRow = z.object({ pv_name: z.string(), vg_name: z.string().default(''), pv_size: bytes, pv_free: bytes.optional() });
const vgRow = z.object({ vg_name: z.string(), vg_size: bytes, vg_free: bytes });
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
