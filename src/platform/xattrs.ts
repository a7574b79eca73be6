// Extended attributes for the file engine, behind a runtime platform choice:
// xattrs-linux.ts (the @napi-rs/xattr addon, which has no Windows build) or
// xattrs-windows.ts (none). Loaded with a dynamic import on first use, so
// that nothing imports the Linux addon on Windows: a static import of it
// anywhere in the CLI's import graph makes every command crash at start-up.

export interface XattrOps {
  /** All xattrs of an entry, sorted by name; empty when there are none. */
  readXattrs(abs: Buffer): Map<string, Buffer>;
  /** Makes an entry's xattrs exactly `want`: sets what differs, removes the rest. */
  writeXattrs(abs: Buffer, want: Map<string, Buffer> | undefined): void;
}

/** A path the xattr library cannot reach (readXattrs skips the entry with a warning). */
export class XattrPathError extends Error {}

let loaded: Promise<XattrOps> | undefined;

export function loadXattrs(): Promise<XattrOps> {
  loaded ??= process.platform === 'win32' ? import('./xattrs-windows.js') : import('./xattrs-linux.js');
  return loaded;
}
