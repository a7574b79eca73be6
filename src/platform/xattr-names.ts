// Extended attributes that are never copied: not an entry's own data but a
// file system's second view of something that travels anyway, or what only
// the kernel may write. The names are the "skip" entries of libattr's
// /etc/xattr.conf, the list cp --preserve=xattr (attr_copy_file) honours:
// - xfs shows root each POSIX ACL a second time, as trusted.SGI_ACL_FILE and
//   trusted.SGI_ACL_DEFAULT in its own on-disk layout (system.posix_acl_*
//   carry the same ACL and are copied). Read from an xfs source and written
//   onto ext4 or btrfs they became real trusted.* attributes there: xfs-format
//   bytes no tool reads, which stay behind when the ACL changes and come back
//   as the old ACL if the tree is ever copied onto xfs again. The other SGI_
//   names and xfsroot.* are xfs internals of the same kind.
// - security.evm is the kernel's HMAC or signature over the file's
//   attributes, keyed on the machine it was made on; the kernel refuses it
//   from a process (but a portable signature) and makes its own.
// - afs.* is the AFS client's view of the server's metadata and ACLs.
// Neither end handles them: the agent does not send them and the receiver
// neither writes nor removes them (on an xfs target, the ACL the stream
// sends sets both views).

const SKIPPED = new Set(['trusted.SGI_ACL_DEFAULT', 'trusted.SGI_ACL_FILE', 'trusted.SGI_CAP_FILE', 'trusted.SGI_MAC_FILE', 'security.evm']);
const SKIPPED_PREFIXES = ['trusted.SGI_DMI_', 'xfsroot.', 'afs.'];

/** Whether an xattr of this name is copied (false for the names above). */
export function xattrCopied(name: string): boolean {
  if (SKIPPED.has(name)) return false;
  for (const p of SKIPPED_PREFIXES) if (name.startsWith(p)) return false;
  return true;
}
