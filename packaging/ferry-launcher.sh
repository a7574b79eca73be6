#!/bin/sh
# ferry launcher (installed as <prefix>/bin/ferry): runs the ferry CLI.
# Which node: $FERRY_NODE when set (an operator's choice, checked for >= 20.19);
# else the bundled runtime, <prefix>/runtime: node started through the
# bundled loader with the bundled C/C++ libraries,
#   runtime/ld-linux-x86-64.so.2 --library-path runtime/lib runtime/node
# so the host's glibc does not matter (2.17 and up). --library-path is the
# loader's own search path, not LD_LIBRARY_PATH: nothing is exported, and
# the tools ferry runs (blkid, lsblk, mkfs ...) use the host's libraries.
# Without runtime/ (a tree run from source): `node` on PATH.
# Uses only what busybox sh also has (readlink -f, no bash).
set -e
self=$(readlink -f "$0")
base=$(dirname "$(dirname "$self")")
# `ferry service install` and the demo start ferry again through this
# launcher (the path it was started as, e.g. /usr/bin/ferry, when absolute),
# never through process.execPath: under the bundled loader that is the loader.
case "$0" in
  /*) FERRY_LAUNCHER=$0 ;;
  *) FERRY_LAUNCHER=$self ;;
esac
export FERRY_LAUNCHER
# glibc keeps a malloc arena per thread that allocates and returns little of
# it; two arenas kept a one-shot `ferry migrate --files` of a /usr tree at
# 195/208 MB peak RSS against 199/211/218 MB (alternating runs, Dec 6,
# docs/file-replication.md), as the agent's systemd unit already does. Only
# the environment can set it; an operator's own value wins.
MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
export MALLOC_ARENA_MAX
# V8's young generation: semi-spaces of 4 MB instead of V8's 16 MB, for the
# main thread and every worker thread (V8 keeps the pages of both semi-spaces
# once a busy isolate grew them). Measured (Dec 6, alternating runs,
# docs/file-replication.md "A smaller young generation"): peak RSS on the
# whole-server benchmark 198 -> 180 MB (agent) and 174 -> 155 MB (receiver),
# on the /usr full copy 156-174 -> 145-147 MB and 137-163 -> 122-124 MB, CPU
# seconds within the runs' spread. Only node's command line (or
# NODE_OPTIONS, which every node child would inherit) sets it: V8 sizes the
# heap before any script runs. test/bench/lib.mjs reads this line.
node_flags='--max-semi-space-size=4'
runtime=$base/runtime
if [ -z "${FERRY_NODE:-}" ] && [ -x "$runtime/node" ]; then
  exec "$runtime/ld-linux-x86-64.so.2" --library-path "$runtime/lib" "$runtime/node" $node_flags "$base/dist/cli/bin.js" "$@"
fi
if [ -n "${FERRY_NODE:-}" ]; then
  node=$FERRY_NODE
elif command -v node >/dev/null 2>&1; then
  node=$(command -v node)
elif command -v nodejs >/dev/null 2>&1; then
  node=$(command -v nodejs)
else
  echo "ferry: Node.js >= 20.19 is required and no 'node' was found on PATH (set FERRY_NODE=/path/to/node)" >&2
  exit 1
fi
v=$("$node" --version 2>/dev/null) || { echo "ferry: $node does not run" >&2; exit 1; }
v=${v#v}
major=${v%%.*}
rest=${v#*.}
minor=${rest%%.*}
case "$major$minor" in
  *[!0-9]*|'') echo "ferry: cannot read the version of $node ($v)" >&2; exit 1 ;;
esac
if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
  echo "ferry: Node.js >= 20.19 is required; $node is v$v (set FERRY_NODE=/path/to/node)" >&2
  exit 1
fi
exec "$node" $node_flags "$base/dist/cli/bin.js" "$@"
