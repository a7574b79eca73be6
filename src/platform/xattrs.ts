// Extended attributes for the file engine, behind a runtime platform choice:
// xattrs-linux.ts (the @napi-rs/xattr addon, which has no Windows build) or
// xattrs-windows.ts (none). Loaded with a dynamic import on first use, so
// that nothing imports the Linux addon on Windows: a static import of it
// anywhere in the CLI's import graph makes every command crash at start-up.

import type { XattrOps } from './xattr-ops.js';

export { XATTRS_REFUSED, XattrPathError, type XattrOps } from './xattr-ops.js';

let loaded: Promise<XattrOps> | undefined;

export function loadXattrs(): Promise<XattrOps> {
  loaded ??= process.platform === 'win32' ? import('./xattrs-windows.js') : import('./xattrs-linux.js');
  return loaded;
}
