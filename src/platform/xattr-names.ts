// Extended attributes that are never copied: not an entry's own data but a
// file system's second view of something that travels anyway, or what cannot
// hold on another machine. Modelled on the "skip" entries of libattr's
// /etc/xattr.conf, the list cp --preserve=xattr (attr_copy_file) honours
// (all of them but user.Beagle.*, a desktop indexer's cache, which is the
// user's data and is copied):
// - xfs shows root each POSIX ACL a second time, as trusted.SGI_ACL_FILE and
//   trusted.SGI_ACL_DEFAULT in its own on-disk layout (system.posix_acl_*
//   carry the same ACL and are copied). Read from an xfs source and written
//   onto ext4 or btrfs they became real trusted.* attributes there: xfs-format
//   bytes no tool reads, which stayed behind when the ACL changed and would
//   come back as the old ACL if the tree were ever copied onto xfs again. The
//   other SGI_ names and xfsroot.* are xfs internals of the same kind.
// - security.evm: an HMAC (type 2) is keyed with the source machine's EVM key,
//   means nothing elsewhere and is refused from a process (EPERM, which used
//   to stop the entry's other xattrs from being applied); an immutable
//   signature (type 3) covers the inode number and generation, which a copy
//   changes. Only a portable signature (type 5, EVM_XATTR_PORTABLE_DIGSIG)
//   holds after a copy, and it is copied. (libattr skips every security.evm.)
// - afs.* is the AFS client's view of the server's metadata and ACLs.
// The agent does not send them, and the receiver never writes them nor
// removes them (xattrs-linux.ts writeXattrs), but for a trusted.SGI_* on a
// file system other than xfs: there it can only be left over from a stream
// that carried it (ferry before 2026-12-07, or tar from an xfs source).

const SKIPPED = new Set(['trusted.SGI_ACL_DEFAULT', 'trusted.SGI_ACL_FILE', 'trusted.SGI_CAP_FILE', 'trusted.SGI_MAC_FILE']);
const SKIPPED_PREFIXES = ['trusted.SGI_DMI_', 'xfsroot.', 'afs.'];
/** security.evm's first byte for a portable signature (the Linux kernel's EVM_XATTR_PORTABLE_DIGSIG). */
const EVM_PORTABLE_SIGNATURE = 0x05;

/** Whether xattrCopied decides a name by its value too (security.evm): without the value it says false. */
export function xattrJudgedByValue(name: string): boolean {
  return name === 'security.evm';
}

/** Whether an xattr of this name (and, for security.evm, this value) is copied: false for the names above. */
export function xattrCopied(name: string, value?: Uint8Array): boolean {
  if (SKIPPED.has(name)) return false;
  if (xattrJudgedByValue(name)) return value !== undefined && value.length > 0 && value[0] === EVM_PORTABLE_SIGNATURE;
  for (const p of SKIPPED_PREFIXES) if (name.startsWith(p)) return false;
  return true;
}
