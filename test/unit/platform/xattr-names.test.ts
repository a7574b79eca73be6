// Which xattr names are copied (platform/xattr-names.ts): libattr's skip list, and security.evm only as a
// portable signature.
import { describe, expect, it } from 'vitest';
import { xattrCopied } from '../../../src/platform/xattr-names.js';

describe('xattrCopied', () => {
  it("leaves out xfs's second view of an ACL and its other internals, and afs.*", () => {
    for (const name of ['trusted.SGI_ACL_FILE', 'trusted.SGI_ACL_DEFAULT', 'trusted.SGI_CAP_FILE', 'trusted.SGI_MAC_FILE', 'trusted.SGI_DMI_x', 'xfsroot.foo', 'afs.acl'])
      expect(xattrCopied(name, Buffer.from('v')), name).toBe(false);
  });

  it('copies everything else: ACLs, labels, capabilities, user and trusted data, names that only look alike', () => {
    for (const name of ['system.posix_acl_access', 'system.posix_acl_default', 'security.selinux', 'security.capability', 'security.ima', 'trusted.secret', 'user.kept', 'user.Beagle.x', 'trusted.SGI_ACL', 'trusted.sgi_acl_file', 'user.afs.x', 'btrfs.compression'])
      expect(xattrCopied(name, Buffer.from('v')), name).toBe(true);
  });

  it('copies security.evm only as a portable signature (type 5), not an HMAC (2) or an immutable signature (3)', () => {
    expect(xattrCopied('security.evm', Buffer.from([0x05, 0x02, 0x01]))).toBe(true);
    expect(xattrCopied('security.evm', Buffer.from([0x02, 0xaa]))).toBe(false);
    expect(xattrCopied('security.evm', Buffer.from([0x03, 0xaa]))).toBe(false);
    expect(xattrCopied('security.evm', Buffer.alloc(0))).toBe(false);
    expect(xattrCopied('security.evm')).toBe(false);
  });
});
