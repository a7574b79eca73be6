// The JSON that native-probes/windows/*.ps1 print, as zod schemas. Tolerant
// of what PowerShell does to values (a single-element array may arrive as a
// bare object, an enum as its number, a missing value as null).

import { z } from 'zod';

/** PowerShell's ConvertTo-Json turns a one-element array into the element, and an empty one into null. */
const arrayOf = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (v === null || v === undefined ? [] : Array.isArray(v) ? v : [v]), z.array(item));
/** A non-negative number; PowerShell may send it as a string or null. Truncated to an integer (sizes, counts). */
const num = z.preprocess((v) => (v === null || v === undefined || v === '' ? 0 : typeof v === 'string' ? Number(v) : v), z.number().min(0).transform(Math.trunc));
const text = z.preprocess((v) => (v === null || v === undefined ? '' : String(v)), z.string());

export const windowsVolumeSchema = z.looseObject({
  FileSystem: text,
  FileSystemLabel: text.optional(),
  Size: num,
  SizeRemaining: num,
  AllocationUnitSize: num.optional(),
  UniqueId: text.optional(),
});

export const windowsPartitionSchema = z.looseObject({
  PartitionNumber: num,
  DriveLetter: z.preprocess((v) => (typeof v === 'string' && /^[A-Za-z]:?$/.test(v) ? v[0]!.toUpperCase() : null), z.string().nullable()),
  AccessPaths: arrayOf(z.string()).optional(),
  Offset: num.optional(),
  Size: num,
  Type: text.optional(),
  GptType: text.optional(),
  Guid: text.optional(),
  IsActive: z.boolean().optional(),
  IsBoot: z.boolean().default(false),
  IsSystem: z.boolean().default(false),
  Volume: windowsVolumeSchema.nullable().optional(),
});

export const windowsDiskSchema = z.looseObject({
  Number: num,
  FriendlyName: text.optional(),
  Size: num,
  PartitionStyle: z.preprocess((v) => (v === 1 ? 'MBR' : v === 2 ? 'GPT' : typeof v === 'string' ? v.toUpperCase() : 'RAW'), z.enum(['MBR', 'GPT', 'RAW'])),
  IsBoot: z.boolean().default(false),
  IsSystem: z.boolean().default(false),
  Partitions: arrayOf(windowsPartitionSchema),
});

export const windowsDisksProbeSchema = z.looseObject({ Disks: arrayOf(windowsDiskSchema) });

const ipAddr = z.looseObject({ Address: text, PrefixLength: num });
export const windowsAdapterSchema = z.looseObject({
  Name: text,
  MacAddress: text,
  Status: text.optional(),
  Mtu: num.optional(),
  IPv4: arrayOf(ipAddr),
  IPv6: arrayOf(ipAddr),
  IPv4Gateway: arrayOf(text),
  IPv6Gateway: arrayOf(text),
});
export const windowsNetworkProbeSchema = z.looseObject({ Adapters: arrayOf(windowsAdapterSchema) });

export const windowsSystemProbeSchema = z.looseObject({
  Hostname: text,
  Caption: text,
  Version: text,
  BuildNumber: text.optional(),
  OSArchitecture: text,
  ProductType: num.optional(),
  SystemDirectory: text,
  WindowsDirectory: text.optional(),
  SystemDrive: text.optional(),
  FirmwareType: text,
  CpuCount: num,
  MemoryBytes: num,
  Manufacturer: text.optional(),
  Model: text.optional(),
  HypervisorPresent: z.boolean().optional(),
  BiosVendor: text.optional(),
  BiosVersion: text.optional(),
  ChassisAssetTag: text.optional(),
  MissingDriverFiles: arrayOf(z.string()),
  AbnormalServices: arrayOf(z.looseObject({ Name: text, Problem: text })),
});

export const windowsRightsProbeSchema = z.looseObject({
  User: text,
  IsAdministrator: z.boolean(),
  Privileges: arrayOf(z.looseObject({ Name: text, State: text })),
});

export type WindowsDisksProbe = z.output<typeof windowsDisksProbeSchema>;
export type WindowsNetworkProbe = z.output<typeof windowsNetworkProbeSchema>;
export type WindowsSystemProbe = z.output<typeof windowsSystemProbeSchema>;
export type WindowsRightsProbe = z.output<typeof windowsRightsProbeSchema>;

/** The raw stdout of each probe (undefined when it could not run). */
export interface WindowsProbeOutputs {
  disks?: string;
  network?: string;
  system?: string;
  rights?: string;
}
