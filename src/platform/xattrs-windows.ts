// Windows: no extended attributes are read or written (NTFS alternate data
// streams and ACLs are not carried by the file engine). Writing a non-empty
// set fails, so the extractor warns that they were not applied.

export function readXattrs(_abs: Buffer): Map<string, Buffer> {
  return new Map();
}

export function writeXattrs(_abs: Buffer, want: Map<string, Buffer> | undefined): void {
  if (want && want.size > 0) throw new Error('extended attributes are not supported on Windows');
}
