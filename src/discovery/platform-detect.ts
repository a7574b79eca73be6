// The cloud or hypervisor a machine runs on, from its SMBIOS/DMI strings
// (Linux: /sys/class/dmi/id; Windows: Win32_ComputerSystem / Win32_BIOS).

import type { Platform } from '../sms/schemas/source.js';

/** The cloud or hypervisor from DMI strings; 'other' when none is recognised. */
export function detectPlatform(dmi: Record<string, string>, hypervisorType = ''): Platform {
  const all = ['sys_vendor', 'product_name', 'bios_vendor', 'bios_version', 'chassis_asset_tag', 'board_vendor', 'chassis_vendor']
    .map((k) => dmi[k] ?? '')
    .join('|')
    .toLowerCase();
  if (all.includes('huaweicloud') || all.includes('huawei cloud')) return 'hw';
  if (all.includes('alibaba')) return 'ali';
  if (all.includes('amazon ec2') || all.includes('amazon')) return 'aws';
  if (all.includes('google')) return 'gcp';
  if (all.includes('tencent')) return 'tencent';
  // Azure VMs carry Hyper-V's DMI strings plus this chassis asset tag.
  if ((dmi.chassis_asset_tag ?? '') === '7783-7084-3265-9085-8269-3286-77') return 'azure';
  if (all.includes('vmware')) return 'vmware';
  if (all.includes('microsoft corporation') && all.includes('virtual machine')) return 'hyperv';
  if (hypervisorType === 'xen' && all.includes('amazon')) return 'aws';
  return 'other';
}

