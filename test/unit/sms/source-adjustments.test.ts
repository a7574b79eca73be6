// `ferry sources adjust` sends PUT /v3/sources/{id} with every current
// choice (the control plane replaces the whole list) and the operator's
// changes: leave out, take back, resize — by the ids GET shows (disk N,
// partition N_M, volume group, VG:LV). Sizes may carry binary units.

import { describe, expect, it } from 'vitest';
import { sourceDetailsSchema } from '../../../src/sms/schemas/index.js';
import { adjustmentBody, parseSize } from '../../../src/sms/source-adjustments.js';

const GiB = 2 ** 30;
/** As GET /v3/sources/{id} shows it: one choice already made (0_1 left out). */
const shown = sourceDetailsSchema.parse({
  id: 'src-1',
  disks: [
    {
      id: '0', name: '/dev/vda', size: 20 * GiB, need_migration: true, adjust_size: 20 * GiB,
      physical_volumes: [
        { id: '0_0', name: '/dev/vda1', size: GiB, need_migration: true, adjust_size: GiB },
        { id: '0_1', name: '/dev/vda2', size: 2 * GiB, need_migration: false, adjust_size: 2 * GiB },
        { id: '0_2', name: '/dev/vda3', size: 17 * GiB, need_migration: true, adjust_size: 17 * GiB },
      ],
    },
  ],
  volume_groups: [{ id: 'vg0', name: 'vg0', size: 10 * GiB, need_migration: true, adjust_size: 10 * GiB, logical_volumes: [{ id: 'root', name: 'root', size: 8 * GiB, need_migration: true, adjust_size: 8 * GiB }] }],
});

describe('adjustmentBody', () => {
  it('keeps every current choice and applies the changes', () => {
    const body = adjustmentBody(shown, [
      { id: '0_2', size: 10 * GiB },
      { id: '0_1', keep: true },
      { id: '0_0', skip: true },
      { id: 'vg0:root', size: 4 * GiB },
    ]);
    expect(body).toEqual({
      disks: [
        {
          id: '0', need_migration: true, adjust_size: 20 * GiB,
          physical_volumes: [
            { id: '0_0', need_migration: false, adjust_size: GiB },
            { id: '0_1', need_migration: true, adjust_size: 2 * GiB },
            { id: '0_2', need_migration: true, adjust_size: 10 * GiB },
          ],
        },
      ],
      volume_group_s: [{ id: 'vg0', need_migration: true, adjust_size: 10 * GiB, logical_volumes: [{ id: 'root', need_migration: true, adjust_size: 4 * GiB }] }],
    });
  });

  it('refuses an id the source does not have, listing the ones it has', () => {
    expect(() => adjustmentBody(shown, [{ id: '1_0', skip: true }])).toThrow('source src-1 has no disk, partition, volume group or logical volume "1_0" (it has: 0, 0_0, 0_1, 0_2, vg0, vg0:root)');
  });
});

describe('parseSize', () => {
  it('reads bytes and binary units', () => {
    expect(parseSize('10737418240')).toBe(10 * GiB);
    expect(parseSize('10G')).toBe(10 * GiB);
    expect(parseSize('512MiB')).toBe(512 * 2 ** 20);
    expect(parseSize('1.5t')).toBe(1.5 * 2 ** 40);
    expect(() => parseSize('ten')).toThrow(/"ten" is not a size/);
    expect(() => parseSize('0')).toThrow(/not a size ferry can use/);
  });
});
