#!/bin/bash
# Full-copy measurement for issue 14 (docs/file-replication.md, "Full copy of a /usr tree"): ferry migrate --files → ferry receive
# vs tar|lz4 -1|socat → socat|lz4 -d|tar x, on a /usr-built ext4 tree into xfs, cold caches.
# Root only (loop devices, mounts, drop_caches); always under the shared lock:
#   flock /tmp/ferry-heavy.lock test/bench/file-full-usr.sh run 3      # tar, ferry alternating, 3 pairs
#   … setup | run N [dist] | ferry-only N [dist] | tar-only N | verify | clean
# Each line printed: wall seconds (from the sender's start to the receiving side's end), CPU seconds
# (user+sys, all threads) and peak RSS of each process (GNU time -v). FERRY_NODE_ARGS adds node flags
# (e.g. --cpu-prof) to both ferry processes. The tree (~43,000 entries, 416 MB used, 620 MB apparent) is
# built once in $FERRY_FFM_DIR (default /var/tmp/ferry-file-full).
set -euo pipefail
# As ferry's launcher and systemd unit run it (see test/bench/lib.mjs); FERRY_BENCH_ARENAS=default: glibc's default.
if [ "${FERRY_BENCH_ARENAS:-}" = default ]; then unset MALLOC_ARENA_MAX; else export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}; fi
# node's flags as the launcher gives them (its node_flags= line); FERRY_BENCH_NODE_FLAGS=none: V8's defaults.
LAUNCHER_NODE_FLAGS=
[ "${FERRY_BENCH_NODE_FLAGS:-}" = none ] || LAUNCHER_NODE_FLAGS=$(sed -n "s/^node_flags='\(.*\)'\$/\1/p" "$(dirname "$0")/../../packaging/ferry-launcher.sh")
M=${FERRY_FFM_DIR:-/var/tmp/ferry-file-full}
SRC=$M/src; DST=$M/dst
setup() {
  mkdir -p $SRC $DST
  if ! mountpoint -q $SRC; then
    [ -f $M/src.img ] || { truncate -s 2G $M/src.img; mkfs.ext4 -q -F $M/src.img; }
    mount -o loop $M/src.img $SRC
  fi
  [ -f $M/dst.img ] || truncate -s 3G $M/dst.img
  if [ ! -e $SRC/.built ]; then
    mkdir -p $SRC/usr/share $SRC/usr/lib
    cp -a /usr/share/man /usr/share/doc $SRC/usr/share/
    cp -a /usr/include $SRC/usr/
    cp -a /usr/lib/python3 $SRC/usr/lib/
    # 300 MB sparse file: a few data ranges in holes
    truncate -s 300M $SRC/sparse.img
    for off in 0 50 120 299; do dd if=/dev/urandom of=$SRC/sparse.img bs=1M count=1 seek=$off conv=notrunc status=none; done
    mkdir -p $SRC/links
    for i in 1 2 3 4 5; do ln $SRC/usr/include/stdio.h $SRC/links/stdio-$i.h; done
    ln $SRC/usr/share/man/man1/ls.1.gz $SRC/links/ls.1.gz 2>/dev/null || true
    for f in $(find $SRC/usr/include -maxdepth 1 -type f | head -200); do setfattr -n user.ferry -v "x$RANDOM" $f; done
    for f in $(find $SRC/usr/share/doc -maxdepth 1 -type d | head -100); do setfacl -m u:1234:rx $f; setfacl -d -m g:2345:r $f; done
    touch $SRC/.built
  fi
  echo "tree: $(find $SRC | wc -l) entries, $(du -sh --apparent-size $SRC | cut -f1) apparent, $(du -sh $SRC | cut -f1) used"
}
freshdst() {
  mountpoint -q $DST && umount $DST
  mkfs.xfs -q -f $M/dst.img
  mount -o loop $M/dst.img $DST
}
# FERRY_FFM_CACHE=warm keeps the page cache (the source was read just before), to tell I/O waits from CPU.
drop() { sync; [ "${FERRY_FFM_CACHE:-cold}" = warm ] || echo 3 > /proc/sys/vm/drop_caches; }
# GNU time -v fields -> "wall cpu rssMB"
tv() { awk -F': ' '/User time/{u=$2}/System time/{s=$2}/Maximum resident/{r=$2}/Elapsed/{e=$2} END{printf "cpu=%.2f rss=%.0fMB", u+s, r/1024}' $1; }
ferry_run() {
  local dist=${1:-$(cd "$(dirname "$0")/../.." && pwd)/dist}
  freshdst; rm -rf $M/recv $M/state; mkdir -p $DST/tree
  local port=$((20000 + RANDOM % 20000))
  /usr/bin/time -v -o $M/recv.time ${FERRY_WRAP_R:-} node $LAUNCHER_NODE_FLAGS ${FERRY_NODE_ARGS:-} $dist/cli/bin.js receive --listen 127.0.0.1:$port --data $M/recv --target tree=$DST/tree >$M/recv.out 2>$M/recv.err &
  local tpid=$!
  for i in $(seq 100); do [ -f $M/recv/receiver.json ] && grep -qi fingerprint $M/recv.out 2>/dev/null && break; sleep 0.1; done
  local tok=$(node -e "console.log(require('$M/recv/receiver.json').token)") fp=$(node -e "console.log(require('$M/recv/receiver.json').fingerprint)")
  drop
  local t0=$(date +%s.%N)
  /usr/bin/time -v -o $M/agent.time ${FERRY_WRAP_A:-} node $LAUNCHER_NODE_FLAGS ${FERRY_NODE_ARGS:-} $dist/cli/bin.js migrate --to 127.0.0.1:$port --token $tok --fingerprint $fp --files $SRC=tree --state $M/state --json >$M/agent.out 2>$M/agent.err ${FERRY_NODE_OPTS:+}
  local t1=$(date +%s.%N)
  local rpid=$(pgrep -f "^node .*cli/bin.js receive --listen 127.0.0.1:$port")
  kill -TERM $rpid; wait $tpid || true
  echo "ferry wall=$(echo "$t1 - $t0" | bc) agent[$(tv $M/agent.time)] receiver[$(tv $M/recv.time)]"
}
tar_run() {
  freshdst; mkdir -p $DST/tree
  local port=$((20000 + RANDOM % 20000))
  drop
  /usr/bin/time -v -o $M/rt.time bash -c "socat -u TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr - | lz4 -d -c | tar --xattrs --xattrs-include='*' --acls --numeric-owner -xpf - -C $DST/tree && sync -f $DST/tree" &
  local rp=$!
  sleep 0.3
  local t0=$(date +%s.%N)
  /usr/bin/time -v -o $M/st.time bash -c "tar --xattrs --xattrs-include='*' --acls --sparse -C $SRC -cf - . | lz4 -1 -c | socat -u - TCP:127.0.0.1:$port"
  wait $rp
  local t1=$(date +%s.%N)
  echo "tar   wall=$(echo "$t1 - $t0" | bc) sender[$(tv $M/st.time)] receiver[$(tv $M/rt.time)]"
}
# (grep finds nothing on an identical copy: `|| true`, or pipefail would end the script without a word.)
verify() { rsync -aHAX --numeric-ids --dry-run --itemize-changes --delete $SRC/ $DST/tree/ | { grep -v lost+found || true; } > $M/verify.out; echo "verify: $(wc -l < $M/verify.out) lines, $(grep -vc '^\.d' $M/verify.out || true) not directories"; grep -v '^\.d' $M/verify.out | head -5 || true; }
case $1 in
  setup) setup ;;
  run) setup >/dev/null; for i in $(seq ${2:-3}); do tar_run; ferry_run ${3:-}; done ;;
  ferry-only) setup >/dev/null; for i in $(seq ${2:-1}); do ferry_run ${3:-}; done ;;
  tar-only) setup >/dev/null; for i in $(seq ${2:-1}); do tar_run; done ;;
  verify) verify ;;
  clean) for d in $DST $SRC; do mountpoint -q $d && umount $d; done; rm -rf $M ;;
esac
