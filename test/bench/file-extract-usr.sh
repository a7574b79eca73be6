#!/bin/bash
# The receiver side alone, for issue 14: each build's FileExtractor applies the same pax tar of the /usr tree that
# file-full-usr.sh builds (without its sparse file, which GNU tar would write in its own sparse format) to a fresh
# xfs, page cache warm, builds alternating. Root only (loop mounts); always under the shared lock:
#   flock /tmp/ferry-heavy.lock test/bench/file-extract-usr.sh 3 DIST_BEFORE DIST_AFTER …
# A DIST must have ../package.json and node_modules above it (copy dist/ to a sibling of it in a worktree).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
M=${FERRY_FFM_DIR:-/var/tmp/ferry-file-full}
W=$M/extract
"$HERE/file-full-usr.sh" setup >/dev/null
mkdir -p $W/dst
[ -f $W/tree.tar ] || tar --xattrs --xattrs-include='*' --format=pax --exclude=./sparse.img -C $M/src -cf $W/tree.tar .
[ -f $W/dst.img ] || truncate -s 3G $W/dst.img
n=$1; shift
for i in $(seq $n); do
  for d in "$@"; do
    mountpoint -q $W/dst && umount $W/dst
    mkfs.xfs -q -f $W/dst.img
    mount -o loop $W/dst.img $W/dst
    cat $W/tree.tar > /dev/null
    echo "$(basename $d) $(node "$HERE/file-extract.mjs" $d $W/tree.tar $W/dst)"
  done
done
umount $W/dst
