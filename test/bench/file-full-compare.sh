#!/bin/bash
# Before/after of the file engine's full copy on the /usr tree, in one run: N rounds (default 3) of
# file-full-usr.sh's tar pipeline, ferry from BEFORE_DIST and ferry from this checkout's dist, the order
# reversed every other round; then `verify` of the last copy. Caches are dropped before every run (cold).
# BEFORE_DIST must be a built dist inside a checkout (it reads ../package.json and ../node_modules), e.g.
#   git worktree add /work/wt/before <rev> && ln -s "$PWD/node_modules" /work/wt/before/ && (cd /work/wt/before && npm run build)
# Root only; always under the shared lock:
#   flock /tmp/ferry-heavy.lock test/bench/file-full-compare.sh /work/wt/before/dist 3
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
before=${1:?usage: file-full-compare.sh BEFORE_DIST [ROUNDS]}
rounds=${2:-3}
ffu=$here/file-full-usr.sh
echo "# ferry processes: $([ "${FERRY_BENCH_ARENAS:-}" = default ] && echo "glibc's default malloc arenas" || echo "MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}"), node $([ "${FERRY_BENCH_NODE_FLAGS:-}" = none ] && echo "with V8's default heap sizes" || sed -n "s/^node_flags='\(.*\)'\$/\1/p" "$here/../../packaging/ferry-launcher.sh") (as ferry's launcher gives them; file-full-usr.sh starts both ferries so)"
for i in $(seq "$rounds"); do
  echo "round $i $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  if [ $((i % 2)) = 1 ]; then
    "$ffu" tar-only 1
    echo -n "before: "; "$ffu" ferry-only 1 "$before"
    echo -n "after:  "; "$ffu" ferry-only 1
  else
    echo -n "after:  "; "$ffu" ferry-only 1
    echo -n "before: "; "$ffu" ferry-only 1 "$before"
    "$ffu" tar-only 1
  fi
done
"$ffu" verify
